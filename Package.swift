// swift-tools-version: 6.0
// The module graph follows ARCHITECTURE.md: arrows only point down.
//   colgrep → ColGrep → {CodeUnits, Encoder, Plaid, Store, TensorCUDA} → Tensor → CBLAS
import PackageDescription

/// Where scripts/setup.sh unpacks the tree-sitter core source (an ignored folder).
let treeSitterSource = "\(Context.packageDirectory)/.deps/tree-sitter/lib"

let package = Package(
    name: "colgrep",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "colgrep", targets: ["colgrep"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: executable: argument parsing and output only
        .executableTarget(
            name: "colgrep",
            dependencies: [
                "ColGrep",
                // debug and bench commands drive the libraries directly
                "CodeUnits", "Encoder", "Plaid", "Tensor", "TensorCUDA", "Tokenizers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: the product
        .target(name: "ColGrep", dependencies: ["CodeUnits", "Tokenizers", "Encoder", "Tensor", "TensorCUDA", "Plaid", "Store", "CXXHash", "CKernels"]),

        // MARK: libraries
        .target(name: "CodeUnits", dependencies: ["CTreeSitter", "CXXHash"]),
        .target(name: "Tokenizers"),
        .target(name: "Encoder", dependencies: ["Tensor", "Tokenizers", "CCurl"]),
        .target(name: "Tensor", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "TensorCUDA", dependencies: ["Tensor", "CCUDA", "CKernels"]),
        .target(name: "Plaid", dependencies: ["Tensor", "CBLAS", "CKernels", "CXXHash"], swiftSettings: [.unsafeFlags(["-O"])]),  // numeric kernels: optimised in debug builds too
        .target(name: "Store", dependencies: ["CSQLite"]),

        // MARK: C shims (declarations and module maps only; third-party code comes from setup)
        .target(
            name: "CTreeSitter",
            path: "Sources/CTreeSitter",
            cSettings: [.unsafeFlags([
                "-I\(treeSitterSource)/include", "-I\(treeSitterSource)/src", "-O2", "-w", "-std=c11", "-D_DEFAULT_SOURCE",
            ])]
        ),
        // OpenBLAS loaded with dlopen on the first BLAS call, not linked (a served search's client never loads it).
        .target(name: "CBLAS", path: "Sources/CBLAS", linkerSettings: [.linkedLibrary("dl")]),
        // Our own SIMD kernels for the CPU backend; -O2 so debug builds (the test suite) stay fast.
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O2", "-std=c11"])]),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        .systemLibrary(name: "CXXHash", path: "Sources/CXXHash"),
        .target(name: "CCUDA", path: "Sources/CCUDA", linkerSettings: [.linkedLibrary("dl")]),
        // libcurl loaded with dlopen on the first model download, not linked (process start stays cheap).
        .target(name: "CCurl", path: "Sources/CCurl", linkerSettings: [.linkedLibrary("dl")]),

        // MARK: tests
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"], resources: [.copy("Fixtures")]),
        .testTarget(name: "EncoderTests", dependencies: ["Encoder", "Tensor", "Tokenizers"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "CodeUnitsTests", dependencies: ["CodeUnits"], resources: [.copy("Fixtures")]),
        .testTarget(name: "PlaidTests", dependencies: ["Plaid", "Tensor", "CKernels"]),
        .testTarget(name: "StoreTests", dependencies: ["Store"]),
        .testTarget(name: "TensorCUDATests", dependencies: ["TensorCUDA", "Tensor"]),
        .testTarget(name: "ColGrepTests", dependencies: ["ColGrep", "CodeUnits", "Plaid"]),
    ]
)
