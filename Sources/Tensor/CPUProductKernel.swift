/// The fp32 matrix product behind `CPUBackend.linear`.
public enum CPUProductKernel: String, Sendable, CaseIterable {
    /// OpenBLAS SGEMM. It packs the weight into its panel layout on every call, which large batches
    /// (documents: thousands of rows per weight) amortise.
    case blas
    /// `ck_sgemm_dot`: each output a dot product of a row of x and a row of the weight, read where it lies
    /// (nothing packed per call), in a fixed rounding order — so a vector depends neither on the thread count
    /// nor on the CPU. For a query's few dozen rows, where packing the weight cost more than the multiply.
    case dot
}
