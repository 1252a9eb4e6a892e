// swift-tools-version:6.0
// simsiam-bench: SimSiam pretraining and MMSelfSup-style transfer evaluations on CPU.
import PackageDescription

// Release builds are plain -O: preconditions and bounds checks stay on, so a broken contract stops the run instead
// of computing a wrong number. (Until session 4 the engine targets were -Ounchecked, which does not even evaluate a
// precondition's condition: a `pthread_key_create` inside one never ran in release builds, and liblinear's solve
// report read every fit as capped.) Hot loops walk unsafe pointers with wrapping arithmetic instead; measured
// against -Ounchecked in benchmarks/README.md ("Release build: -O, not -Ounchecked").
let package = Package(
  name: "simsiam-bench",
  products: [
    .executable(name: "simsiam-bench", targets: ["SimSiamBenchCLI"]),
    .library(name: "SimSiamEngine", targets: ["Support", "Tensors", "Layers", "Models", "Training", "Checkpoints",
                                                          "Datasets", "Evaluation"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
    .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
  ],
  // Targets are listed bottom to top, and a target imports only targets listed above it. Training (pretraining) and
  // Evaluation (the evaluation protocols) are siblings that do not import each other: what both use sits below
  // them (config loading and the work queue in Support, the weighted kNN in Tensors, the optimisers in Layers, the
  // pretraining and classification datasets in Datasets), and Protocols composes them.
  targets: [
    // MARK: - System libraries (installed by `make setup`; see Makefile)
    .systemLibrary(name: "COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
    .systemLibrary(name: "CLiblinear", providers: [.apt(["liblinear-dev"])]),
    .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
    .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
    .systemLibrary(name: "CMalloc"),  // glibc's malloc.h (mallopt)
    .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),  // SHA-256
    .systemLibrary(name: "CZlibShim", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),  // inflate
    .systemLibrary(name: "CMPI", pkgConfig: "ompi", providers: [.apt(["libopenmpi-dev"])]),  // data parallelism

    // MARK: - Support (the bottom layer: hashing, compression, atomic files, the work queue, config loading)
    .target(name: "Support", dependencies: ["COpenSSL", "CZlibShim", .product(name: "Yams", package: "Yams")]),

    // MARK: - Distributed (the collectives of data-parallel training: Open MPI, or one process without MPI calls)
    .target(name: "Distributed", dependencies: ["CMPI"]),

    // MARK: - Engine
    // Tensor, gemm, parallelFor / parallelForEach; FeatureMatrix and the weighted kNN (a blocked-sgemm kernel).
    .target(name: "Tensors", dependencies: ["Support", "COpenBLAS", "CMalloc"]),
    // The direct 3×3 convolution kernel (AVX2/FMA intrinsics behind `__attribute__((target))` and a runtime CPU check,
    // so the package stays baseline x86-64; Layers/Conv2D+Direct.swift). -O2 also in debug builds: at -O0 the
    // intrinsics' accumulators live on the stack and the tests would run the kernel ~10× slower than it ships.
    .target(name: "CConvKernels", cSettings: [.unsafeFlags(["-O2"])]),
    // Layers, losses, and the optimisers that update their parameters (SGD, LARS, learning-rate schedules).
    .target(name: "Layers", dependencies: ["Tensors", "Distributed", "CConvKernels"]),
    .target(name: "Models", dependencies: ["Layers"]),
    .target(name: "Checkpoints", dependencies: ["Support", "Layers",
                                             .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
    .target(name: "Datasets", dependencies: ["Support", "Tensors", "CTurboJPEG", "CPNG"]),

    // MARK: - Pretraining (SimSiam: config, loop, checkpoints, kNN monitor)
    .target(name: "Training", dependencies: ["Support", "Distributed", "Layers", "Models", "Checkpoints",
                                          "Datasets"]),

    // MARK: - Evaluation protocols (feature extraction and cache, VOC07 SVMs, linear probes, kNN)
    .target(name: "Evaluation", dependencies: ["Support", "Tensors", "Layers", "Models", "Checkpoints", "Datasets",
                                            "CLiblinear"]),

    // MARK: - Results store (SQLite through GRDB)
    .target(name: "Results", dependencies: [.product(name: "GRDB", package: "GRDB.swift")]),

    // MARK: - Protocols (one room per protocol: request, runner, result → score rows; the run lifecycle, the
    // backbone builder and progress reporting shared by all of them). The CLI and quickstart call only this.
    .target(name: "Protocols", dependencies: ["Support", "Distributed", "Tensors", "Layers", "Models", "Training", "Checkpoints",
                                           "Datasets", "Evaluation", "Results"]),

    // MARK: - Command-line tool
    .executableTarget(name: "SimSiamBenchCLI", dependencies: [
      "Support", "Distributed", "Models", "Training", "Checkpoints", "Datasets", "Evaluation", "Results",
      "Protocols", .product(name: "ArgumentParser", package: "swift-argument-parser"),
    ]),

    // MARK: - Tests
    .target(name: "TestSupport", dependencies: ["Tensors", "Layers", "Checkpoints", "Datasets"],
            path: "Tests/TestSupport"),
    .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
    .testTarget(name: "LayersTests", dependencies: ["Layers", "TestSupport"], resources: [.copy("Fixtures")]),
    .testTarget(name: "ModelsTests", dependencies: ["Models", "Training", "Checkpoints", "TestSupport"],
                resources: [.copy("Fixtures")]),
    .testTarget(name: "TrainingTests", dependencies: ["Support", "Training", "Models", "Datasets", "Checkpoints",
                                                   "TestSupport"]),
    .testTarget(name: "CheckpointsTests", dependencies: ["Support", "Checkpoints", "Models", "TestSupport"],
                resources: [.copy("Fixtures")]),
    .testTarget(name: "DatasetsTests", dependencies: ["Support", "Datasets", "TestSupport"], resources: [.copy("Fixtures")]),
    .testTarget(name: "EvaluationTests", dependencies: ["Support", "Evaluation", "Models", "Datasets", "TestSupport"],
                resources: [.copy("Fixtures")]),
    .testTarget(name: "ResultsTests", dependencies: ["Results"]),
    .testTarget(name: "SupportTests", dependencies: ["Support", "TestSupport"], resources: [.copy("Fixtures")]),
    .testTarget(name: "ProtocolsTests", dependencies: ["Protocols", "Results", "Evaluation", "Training", "Checkpoints", "Datasets", "Models", "Tensors", "Support", "TestSupport"]),
    .testTarget(name: "CLITests", dependencies: ["SimSiamBenchCLI", "Support", "Protocols", "TestSupport"]),
    .testTarget(name: "DistributedTests", dependencies: ["Distributed", "Tensors", "Layers", "Models", "Training",
                                                      "Evaluation", "Checkpoints", "Datasets", "Results",
                                                      "TestSupport"]),
    .testTarget(name: "NativeLibrariesTests", dependencies: ["COpenBLAS", "CLiblinear", "CTurboJPEG", "CPNG"]),
  ]
)
