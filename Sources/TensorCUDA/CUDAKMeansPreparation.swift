extension CUDABackend {
    /// Loads or compiles the k-means and nearest-centroid kernels for `dim`-wide vectors ahead of an index
    /// build, so that `colgrep warm-cache` leaves nothing for a first cold index to compile (~2.4 s on an
    /// H200 in session 9). Returns the step it took, as `startupSteps` reports it.
    public func prepareKMeans(dim: Int) throws -> StartupStep? {
        let before = startupSteps.count
        _ = try kmeansKernels(dim: dim)
        return startupSteps.count > before ? startupSteps.last : nil
    }
}
