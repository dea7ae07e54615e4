import Tensor

extension PlaidIndex {
    /// Token vectors of the live documents.
    public var tokenCount: Int {
        segments.reduce(0) { total, segment in
            var tokens = segment.codes.count
            dead[segment.record.number]?.forEach { tokens -= segment.tokenRange($0).count }
            return total + tokens
        }
    }

    /// Every live document as the index stores it: each token `normalize(centroid + decoded residual)`
    /// in float, in id order. Brute-force MaxSim over these is the best any search of this index can do
    /// (the residual codec's ceiling), which is how `colgrep bench recall --diagnose` separates recall
    /// lost to the codec from recall lost to the search stages.
    public func reconstructedDocuments() -> [(id: Int64, vectors: HostMatrix)] {
        var result: [(id: Int64, vectors: HostMatrix)] = []
        result.reserveCapacity(documentCount)
        for segment in segments {
            let dead = self.dead[segment.record.number]
            for row in 0..<segment.documentCount where !(dead?.contains(row) ?? false) {
                let values = codec.decodeDocument(segment, row: row)
                result.append((segment.ids[row], HostMatrix(rows: values.count / codec.dim, cols: codec.dim, values: values)))
            }
        }
        return result.sorted { $0.id < $1.id }
    }
}

extension PlaidIndex {
    /// `documents` (the vectors this index was built from, by id) reconstructed as this index's codec
    /// would with `residualBits` bits per residual dimension instead of its own: each token keeps its
    /// stored centroid, its residual is re-quantised with buckets at quantiles of these documents'
    /// residuals (bucket means as reconstruction values, as the codec trains them), then normalised.
    /// Brute force over the result estimates what a wider codec would recall, without building one.
    /// Documents whose id is not in the index or whose token count differs are skipped.
    public func requantized(_ documents: [(id: Int64, vectors: HostMatrix)], residualBits: Int) -> [(id: Int64, vectors: HostMatrix)] {
        let dim = codec.dim
        let numbers = Dictionary(uniqueKeysWithValues: segments.enumerated().map { ($1.record.number, $0) })
        var kept: [(id: Int64, vectors: HostMatrix, codes: [UInt16])] = []
        for document in documents where document.vectors.cols == dim {
            guard let place = location[document.id], let s = numbers[Int(place.segment)] else { continue }
            let range = segments[s].tokenRange(Int(place.row))
            guard range.count == document.vectors.rows else { continue }
            kept.append((document.id, document.vectors, range.map { segments[s].codes[$0] }))
        }
        // Bucket cutoffs from up to ~1M residual values spread over all tokens.
        let tokens = kept.reduce(0) { $0 + $1.codes.count }
        let step = max(1, tokens * dim / 1_000_000)
        var sample: [Float] = []
        var counter = 0
        for document in kept {
            for (t, code) in document.codes.enumerated() {
                for d in 0..<dim {
                    if counter % step == 0 { sample.append(document.vectors.values[t * dim + d] - codec.centroids[Int(code) * dim + d]) }
                    counter += 1
                }
            }
        }
        sample.sort()
        let buckets = 1 << residualBits
        let cutoffs = (1..<buckets).map { ResidualCodec.quantile(sample, Double($0) / Double(buckets)) }
        let weights = ResidualCodec.bucketMeans(sorted: sample, cutoffs: cutoffs)
        return kept.map { document in
            var values = [Float](repeating: 0, count: document.codes.count * dim)
            for (t, code) in document.codes.enumerated() {
                for d in 0..<dim {
                    let c = codec.centroids[Int(code) * dim + d]
                    let residual = document.vectors.values[t * dim + d] - c
                    // Bucket = number of cutoffs strictly below the value (as the codec quantises).
                    var low = 0, high = cutoffs.count
                    while low < high {
                        let mid = (low + high) / 2
                        if cutoffs[mid] < residual { low = mid + 1 } else { high = mid }
                    }
                    values[t * dim + d] = c + weights[low]
                }
            }
            LinearAlgebra.normalizeRows(&values, cols: dim)
            return (document.id, HostMatrix(rows: document.codes.count, cols: dim, values: values))
        }
    }
}
