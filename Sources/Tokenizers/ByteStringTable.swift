#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An immutable open-addressing hash map from byte strings to token ids.
///
/// The hot loops of WordPiece and BPE look up sub-slices of a UTF-8 buffer; keeping keys in one flat
/// arena and hashing raw bytes avoids building `String`s or `Array`s per lookup.
struct ByteStringTable: Sendable {
    private var arena: [UInt8] = []
    private var keyStart: [Int32] = []
    private var keyLength: [Int32] = []
    private var values: [Int32] = []
    private var slots: [Int32]
    private var mask: Int

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
    }

    var count: Int { values.count }

    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        // FNV-1a, 64-bit: cheap on the short keys tokenizers look up.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3
        }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// Inserts `key → value`; an existing key keeps its first value (as a JSON object's last would
    /// not matter: HF vocabularies have unique keys).
    mutating func insert<C: Collection>(_ key: C, value: Int32) where C.Element == UInt8 {
        if let inserted = key.withContiguousStorageIfAvailable({ insert(bytes: $0, value: value) }) { return inserted }
        Array(key).withUnsafeBufferPointer { insert(bytes: $0, value: value) }
    }

    /// One probe sequence finds either the key (kept as is) or the empty slot it goes into: a model
    /// load inserts ~30k vocabulary entries, so no per-key array and no second hash.
    private mutating func insert(bytes: UnsafeBufferPointer<UInt8>, value: Int32) {
        if (values.count + 1) * 2 > slots.count { rehash() }
        var slot = Self.hash(bytes) & mask
        while true {
            let index = Int(slots[slot])
            if index < 0 { break }
            if Int(keyLength[index]) == bytes.count {
                let start = Int(keyStart[index])
                let equal = arena.withUnsafeBufferPointer { a in
                    bytes.isEmpty || memcmp(a.baseAddress! + start, bytes.baseAddress!, bytes.count) == 0
                }
                if equal { return }
            }
            slot = (slot + 1) & mask
        }
        slots[slot] = Int32(values.count)
        keyStart.append(Int32(arena.count))
        keyLength.append(Int32(bytes.count))
        arena.append(contentsOf: bytes)
        values.append(value)
    }

    /// Room for `keys` more keys of `bytes` bytes in all, so that loading a vocabulary grows nothing.
    mutating func reserve(keys: Int, bytes: Int) {
        arena.reserveCapacity(arena.count + bytes)
        keyStart.reserveCapacity(values.count + keys)
        keyLength.reserveCapacity(values.count + keys)
        values.reserveCapacity(values.count + keys)
    }

    private mutating func rehash() {
        let size = slots.count * 2
        var fresh = [Int32](repeating: -1, count: size)
        let m = size - 1
        arena.withUnsafeBufferPointer { a in
            for i in 0..<values.count {
                let key = UnsafeBufferPointer(rebasing: a[Int(keyStart[i])..<Int(keyStart[i] + keyLength[i])])
                var slot = Self.hash(key) & m
                while fresh[slot] >= 0 { slot = (slot + 1) & m }
                fresh[slot] = Int32(i)
            }
        }
        slots = fresh
        mask = m
    }

    @inline(__always)
    func lookup(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        var slot = Self.hash(key) & mask
        return arena.withUnsafeBufferPointer { a in
            slots.withUnsafeBufferPointer { s in
                while true {
                    let index = Int(s[slot])
                    if index < 0 { return nil }
                    let length = Int(keyLength[index])
                    if length == key.count {
                        let start = Int(keyStart[index])
                        var equal = true
                        var i = 0
                        while i < length {
                            if a[start + i] != key[i] { equal = false; break }
                            i += 1
                        }
                        if equal { return values[index] }
                    }
                    slot = (slot + 1) & mask
                }
            }
        }
    }

    func lookup<C: Collection>(_ key: C) -> Int32? where C.Element == UInt8 {
        Array(key).withUnsafeBufferPointer { lookup($0) }
    }
}

/// An immutable open-addressing map from a pair of token ids to (merge rank, merged id).
struct PairTable: Sendable {
    private var keys: [UInt64]
    private var ranks: [Int32]
    private var merged: [Int32]
    private let mask: Int
    private static let empty = UInt64.max

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: size)
        ranks = [Int32](repeating: 0, count: size)
        merged = [Int32](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 20) & mask
    }

    /// Inserts a merge; the first (lowest-rank) occurrence of a pair wins, as in HF.
    mutating func insert(left: Int32, right: Int32, rank: Int32, result: Int32) {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        var s = Self.slot(key, mask)
        while keys[s] != Self.empty {
            if keys[s] == key { return }
            s = (s + 1) & mask
        }
        keys[s] = key
        ranks[s] = rank
        merged[s] = result
    }

    /// Returns (rank, merged id) of the pair, or nil when the pair never merges.
    @inline(__always)
    func lookup(left: Int32, right: Int32) -> (rank: Int32, result: Int32)? {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        var s = Self.slot(key, mask)
        while true {
            let k = keys[s]
            if k == key { return (ranks[s], merged[s]) }
            if k == Self.empty { return nil }
            s = (s + 1) & mask
        }
    }
}
