// swift-tools-version:6.0
// Speed benchmarks, kept out of the main package's dependency graph (swift-nio / swift-collections style).
import PackageDescription

let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
  name: "simsiam-bench-benchmarks",
  dependencies: [
    .package(name: "simsiam-bench", path: ".."),
    // The CLI's argument parser: --help and bad arguments answered with a message, never a backtrace.
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
  ],
  targets: [
    // Engine vs PyTorch, side by side: R50 inference, R50 training, SimSiam R18-CIFAR step.
    .executableTarget(
      name: "EngineBench",
      dependencies: [.product(name: "SimSiamEngine", package: "simsiam-bench"), argumentParser],
      swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
    // JPEG decode + two SimSiam views per image against the PIL pipeline (augment_bench.py).
    .executableTarget(
      name: "AugmentBench",
      dependencies: [.product(name: "SimSiamEngine", package: "simsiam-bench"), argumentParser],
      swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
    // Per-shape convolution forward/backward against a plain sgemm of the same shape.
    .executableTarget(
      name: "KernelBench",
      dependencies: [.product(name: "SimSiamEngine", package: "simsiam-bench"), argumentParser],
      swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
    // SHA-256 through OpenSSL and inflate through zlib against the pure-Swift code they replaced (kept in this target
    // only) and the command-line tools. Plain -O like the main package, so the old code is timed as it was built.
    .executableTarget(
      name: "SupportBench",
      dependencies: [.product(name: "SimSiamEngine", package: "simsiam-bench")]),
    // ROIAlign (512 rois 14×14, C 1024) and NMS (12000 boxes) against the torch references of make_detection_fixtures.py.
    .executableTarget(
      name: "DetectionBench",
      dependencies: [.product(name: "SimSiamEngine", package: "simsiam-bench")],
      swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
    // VOC07-sized SVM protocol (liblinear) against the scikit-learn reference on the same features.
    .executableTarget(
      name: "SVMBench",
      // + CLiblinear via Evaluation
      dependencies: [.product(name: "SimSiamEngine", package: "simsiam-bench"), argumentParser],
      swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
    // COCO box AP on a val2017-sized synthetic set against pycocotools' COCOeval (coco_eval_bench.py). Plain -O, as
    // the main package builds the evaluator that `simsiam-bench eval coco` runs.
    .executableTarget(
      name: "COCOEvalBench",
      dependencies: [.product(name: "SimSiamEngine", package: "simsiam-bench")]),
  ]
)
