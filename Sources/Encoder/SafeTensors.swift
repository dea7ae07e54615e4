import Foundation
import Tensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `.safetensors` file, memory-mapped: an 8-byte little-endian header length, a JSON header naming
/// each tensor's dtype, shape and byte range, then the raw data. The header is validated against the
/// file size when opened, so a truncated or foreign file is an error naming it, never a crash.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Element types of the format; `matrix` converts the floating-point ones to `Float`.
    public enum DType: String, Sendable {
        case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"
        var size: Int {
            switch self {
            case .f64, .i64: 8
            case .f32, .i32: 4
            case .f16, .bf16, .i16: 2
            case .i8, .u8, .bool: 1
            }
        }
    }

    public struct Entry: Sendable {
        public let dtype: DType
        public let shape: [Int]
        let range: Range<Int>
    }

    public let url: URL
    public let entries: [String: Entry]
    private let mapping: UnsafeMutableRawPointer
    private let length: Int
    private let dataStart: Int

    public init(url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            throw EncoderError.missingFile(url, hint: "the weights are not there; download the model again or point --model at a complete model folder")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw EncoderError.invalidFile(url, reason: "cannot stat it") }
        length = Int(info.st_size)
        // The header is read and checked against the file size before anything is mapped: a tensor
        // that would lie past the end of a truncated file is an error here, never a SIGBUS later.
        let header = try Self.readHeader(fd: fd, length: length, url: url)
        dataStart = 8 + header.count
        guard let json = try? JSONSerialization.jsonObject(with: header) as? [String: Any] else {
            throw EncoderError.invalidFile(url, reason: "the header is not a JSON object (not a safetensors file?)")
        }
        entries = try Self.parseEntries(json, url: url, dataLength: length - dataStart)
        guard let map = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw EncoderError.invalidFile(url, reason: "cannot memory-map it")
        }
        mapping = map
    }

    /// The JSON header bytes, read with `pread` (the 8-byte little-endian length, then the header).
    private static func readHeader(fd: Int32, length: Int, url: URL) throws -> Data {
        guard length >= 8 else { throw EncoderError.invalidFile(url, reason: "\(length) bytes is too short for a safetensors header (truncated download?)") }
        var prefix: UInt64 = 0
        guard pread(fd, &prefix, 8, 0) == 8 else { throw EncoderError.invalidFile(url, reason: "cannot read the header length") }
        let headerLength = UInt64(littleEndian: prefix)
        guard headerLength > 1, headerLength <= UInt64(length - 8) else {
            throw EncoderError.invalidFile(url, reason: "header length \(headerLength) does not fit in \(length) bytes (truncated or not a safetensors file)")
        }
        var header = Data(count: Int(headerLength))
        let read = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(headerLength), 8) }
        guard read == Int(headerLength) else { throw EncoderError.invalidFile(url, reason: "cannot read the \(headerLength)-byte header") }
        return header
    }

    deinit { munmap(mapping, length) }

    private static func parseEntries(_ json: [String: Any], url: URL, dataLength: Int) throws -> [String: Entry] {
        var result: [String: Entry] = [:]
        for (name, value) in json where name != "__metadata__" {
            guard let fields = value as? [String: Any], let dtypeName = fields["dtype"] as? String,
                  let shape = fields["shape"] as? [Int], let offsets = fields["data_offsets"] as? [Int], offsets.count == 2 else {
                throw EncoderError.invalidFile(url, reason: "tensor \(name) has a malformed header entry")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw EncoderError.invalidFile(url, reason: "tensor \(name) has unknown dtype \(dtypeName)")
            }
            let count = shape.reduce(1, *)
            guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] - offsets[0] == count * dtype.size else {
                throw EncoderError.invalidFile(url, reason: "tensor \(name): shape \(shape) does not match its byte range \(offsets)")
            }
            guard offsets[1] <= dataLength else {
                throw EncoderError.invalidFile(url, reason: "tensor \(name) ends at byte \(offsets[1]) but the data holds \(dataLength) bytes (truncated download?)")
            }
            result[name] = Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        return result
    }

    public var names: [String] { entries.keys.sorted() }

    /// The entry of tensor `name`, checked against the expected shape.
    private func entry(_ name: String, shape expected: [Int]?) throws -> Entry {
        guard let entry = entries[name] else {
            throw EncoderError.invalidFile(url, reason: "tensor \(name) is missing (weights of another model or architecture?)")
        }
        if let expected, expected != entry.shape {
            throw EncoderError.invalidFile(url, reason: "tensor \(name) has shape \(entry.shape), config.json implies \(expected)")
        }
        guard [.f32, .f16, .bf16].contains(entry.dtype) else {
            throw EncoderError.invalidFile(url, reason: "tensor \(name) has dtype \(entry.dtype.rawValue); weights must be F32, F16 or BF16")
        }
        return entry
    }

    /// Rows and columns of a tensor viewed as a matrix: 1-D tensors are `1 × n`, N-D `shape[0] × (rest)`.
    private static func matrixShape(_ shape: [Int]) -> (rows: Int, cols: Int) {
        let count = shape.reduce(1, *)
        let rows = shape.count <= 1 ? 1 : shape[0]
        return (rows, rows == 0 ? 0 : count / max(rows, 1))
    }

    /// The tensor `name` in place, without a copy, when it is stored as F32 at a 4-byte aligned
    /// offset; nil when it must be converted (F16, BF16, misaligned), then use `matrix`. The pointer
    /// is valid while this object lives.
    public func mappedFloats(_ name: String, shape expected: [Int]? = nil) throws -> (values: UnsafePointer<Float>, rows: Int, cols: Int)? {
        let entry = try entry(name, shape: expected)
        let offset = dataStart + entry.range.lowerBound
        guard entry.dtype == .f32, offset % MemoryLayout<Float>.alignment == 0 else { return nil }
        let (rows, cols) = Self.matrixShape(entry.shape)
        let values = (UnsafeRawPointer(mapping) + offset).assumingMemoryBound(to: Float.self)
        return (values, rows, cols)
    }

    /// The tensor `name` as a row-major `Float` matrix: 1-D tensors become `1 × n`, N-D tensors
    /// `shape[0] × (rest)`. `shape`, when given, must equal the stored shape.
    public func matrix(_ name: String, shape expected: [Int]? = nil) throws -> HostMatrix {
        let entry = try entry(name, shape: expected)
        let count = entry.shape.reduce(1, *)
        let source = UnsafeRawPointer(mapping) + dataStart + entry.range.lowerBound
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            switch entry.dtype {
            case .f32:
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(start: source, count: count * 4))
            case .bf16:
                for i in 0..<count {
                    let bits = UInt32(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16
                    buffer[i] = Float(bitPattern: bits)
                }
            case .f16:
                for i in 0..<count {
                    buffer[i] = Self.halfToFloat(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            default:
                break
            }
            initialized = count
        }
        let (rows, cols) = Self.matrixShape(entry.shape)
        return HostMatrix(rows: rows, cols: cols, values: values)
    }

    /// IEEE binary16 → binary32 (done by hand: `Float16` is unavailable on some x86-64 toolchains).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F), mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            if mantissa == 0 { return Float(bitPattern: sign) }
            let value = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -value : value
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
    }
}
