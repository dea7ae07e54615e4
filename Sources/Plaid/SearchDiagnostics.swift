import Tensor

extension PlaidIndex {
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
