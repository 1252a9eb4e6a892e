// swift-tools-version:6.0
// Speed benchmarks, kept out of the main package's dependency graph (swift-nio / swift-collections style).
import PackageDescription

let package = Package(
  name: "simsiam-bench-benchmarks",
  dependencies: [.package(name: "simsiam-bench", path: "..")],
  targets: [
    .executableTarget(
      name: "KernelBench",
      dependencies: [.product(name: "SimSiamEngine", package: "simsiam-bench")],
      swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
  ]
)
