import Dispatch
import Foundation
import Tensor

/// Nearest-centroid assignment (`argmax_c 2·x·c − ‖c‖²`), the GEMM-heavy step of k-means and encoding.
///
/// With a backend (a GPU) the assignment is `backend.nearestCentroids` (on CUDA a GEMM fused with
/// the row argmax: only one code per vector comes back); without one, CBLAS scores, exhaustively. (Routing points through coarse groups of centroids was tried and dropped:
/// on near-orthogonal high-dimensional centroids it missed the nearest one often enough to cut the
/// mean token–centroid cosine from 0.96 to 0.91 and recall with it.)
final class CentroidAssigner: Sendable {
    let centroids: [Float]
    let count: Int
    let dim: Int
    private let halfNormSquared: [Float]

    init(centroids: [Float], dim: Int) {
        self.centroids = centroids
        let count = centroids.count / dim
        self.dim = dim
        self.count = count
        var norms = [Float](repeating: 0, count: count)
        centroids.withUnsafeBufferPointer { c in
            for i in 0..<count { norms[i] = 0.5 * LinearAlgebra.dot(c.baseAddress! + i * dim, c.baseAddress! + i * dim, count: dim) }
        }
        self.halfNormSquared = norms
    }

    /// Index of the best centroid of each of the `n` rows of `points`.
    func assign(_ points: UnsafePointer<Float>, count n: Int, backend: (any Backend)?) -> [UInt32] {
        var result = [UInt32](repeating: 0, count: n)
        guard n > 0 else { return result }
        if let backend, (try? assignOnBackend(points, count: n, backend: backend, into: &result)) != nil {
            return result
        }
        result.withUnsafeMutableBufferPointer { out in assignExhaustive(points, count: n, into: out.baseAddress!) }
        return result
    }

    private func assignOnBackend(_ points: UnsafePointer<Float>, count n: Int, backend: any Backend,
                                 into result: inout [UInt32]) throws {
        let weight = try backend.upload(HostMatrix(rows: count, cols: dim, values: centroids))
        // Chunks bound the device's score tile (a backend without the fused path materialises it).
        let chunk = max(1, min(n, (256 << 20) / max(1, count * 4)))
        var start = 0
        while start < n {
            let rows = min(chunk, n - start)
            let x = try backend.upload(HostMatrix(rows: rows, cols: dim,
                                                  values: Array(UnsafeBufferPointer(start: points + start * dim, count: rows * dim))))
            let codes = try backend.nearestCentroids(x, centroids: weight, metric: .euclidean)
            for r in 0..<rows { result[start + r] = UInt32(codes[r]) }
            start += rows
        }
    }

    private func assignExhaustive(_ points: UnsafePointer<Float>, count n: Int, into out: UnsafeMutablePointer<UInt32>) {
        // Row blocks of about 32 MB of scores: OpenBLAS needs a few hundred rows per call to keep its
        // threads busy (64-row calls ran at a fifth of the throughput of 1024-row ones on 2 cores);
        // the argmax pass over the block is split between the cores as well.
        let chunk = max(1, min(n, max(256, min(4096, (32 << 20) / max(1, count * 4)))))
        let chunks = (n + chunk - 1) / chunk
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
        centroids.withUnsafeBufferPointer { c in
            // Uninitialised: every GEMM overwrites what the argmax then reads (β = 0).
            var scores = [Float](unsafeUninitializedCapacity: chunk * count) { _, initialized in initialized = chunk * count }
            scores.withUnsafeMutableBufferPointer { s in
                let block = UnsafeSendablePointer(UnsafePointer(s.baseAddress!))
                for index in 0..<chunks {
                    let start = index * chunk
                    let rows = min(chunk, n - start)
                    LinearAlgebra.multiplyTransposed(points + start * dim, rows: rows, c.baseAddress!, rows: count,
                                                     depth: dim, into: s.baseAddress!)
                    let target = UnsafeMutableSendablePointer(out + start)
                    let parts = rows >= 64 ? workers : 1
                    DispatchQueue.concurrentPerform(iterations: parts) { part in
                        for r in (part * rows / parts)..<((part + 1) * rows / parts) {
                            target.pointer[r] = argmax(block.pointer + r * count)
                        }
                    }
                }
            }
        }
    }

    /// Best centroid for one row of dot products (8 lanes at a time).
    @inline(__always)
    private func argmax(_ scores: UnsafePointer<Float>) -> UInt32 {
        halfNormSquared.withUnsafeBufferPointer { norms in
            let half = norms.baseAddress!
            var bestValue = SIMD8<Float>(repeating: -.infinity)
            var bestIndex = SIMD8<Int32>(repeating: 0)
            var index = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
            var j = 0
            while j + 8 <= count {
                let value = UnsafeRawPointer(scores + j).loadUnaligned(as: SIMD8<Float>.self)
                    - UnsafeRawPointer(half + j).loadUnaligned(as: SIMD8<Float>.self)
                let better = value .> bestValue
                bestValue.replace(with: value, where: better)
                bestIndex.replace(with: index, where: better)
                index &+= 8
                j += 8
            }
            var best = -Float.infinity
            var bestAt = 0
            for lane in 0..<8 where bestValue[lane] > best || (bestValue[lane] == best && Int(bestIndex[lane]) < bestAt) {
                best = bestValue[lane]
                bestAt = Int(bestIndex[lane])
            }
            while j < count {
                let value = scores[j] - half[j]
                if value > best { best = value; bestAt = j }
                j += 1
            }
            return UInt32(bestAt)
        }
    }
}

/// Raw pointers handed to `concurrentPerform` workers that write disjoint ranges.
struct UnsafeMutableSendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

/// Read-only raw pointers shared with `concurrentPerform` workers.
struct UnsafeSendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafePointer<T>
    init(_ pointer: UnsafePointer<T>) { self.pointer = pointer }
}
