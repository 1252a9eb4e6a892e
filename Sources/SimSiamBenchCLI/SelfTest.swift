// `simsiam-bench selftest`: a seconds-long SimSiam run on generated images that shows the engine trains here.
import ArgumentParser
import Foundation
import Training

struct SelfTest: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "selftest",
    abstract: "Train a tiny SimSiam ResNet-18 for a few steps on generated images and check that it learns.",
    discussion: """
      Each generated image is a smooth random pattern; its two views are flipped and noised copies. A working \
      engine drives the SimSiam loss from about 0 toward -1 while the normalised output std stays near 1/sqrt(d) \
      (no collapse). Exits non-zero if the loss does not fall or the outputs collapse.
      """)

  @OptionGroup var common: CommonOptions
  @Option(help: "Training steps.") var steps = 30
  @Option(help: "Images per step (each gives two views).") var batchSize = 32

  func validate() throws {
    guard steps >= 10 else { throw ValidationError("--steps must be at least 10 to judge the trend, got \(steps).") }
    guard batchSize >= 4 else { throw ValidationError("--batch-size must be at least 4 for BatchNorm, got \(batchSize).") }
  }

  func run() throws {
    try common.configureThreads()
    var config = SyntheticSmokeRunConfig()
    config.steps = steps
    config.batchSize = batchSize
    config.seed = common.seed ?? 0
    let dimension = config.model.features
    print("selftest: SimSiam ResNet-18 (CIFAR stem, width 1/8), d = \(dimension), batch \(batchSize), \(steps) steps")
    print(" step     loss   z-std (1/sqrt(d) = \(String(format: "%.3f", 1 / Double(dimension).squareRoot())))   ms")
    let records = runSyntheticSmoke(config) { record in
      print(String(format: "%5d %8.4f %8.4f %17.0f", record.step, record.loss, record.normalizedOutputStd,
                   record.seconds * 1000))
    }
    let window = max(3, steps / 6)
    let first = records.prefix(window).map(\.loss).reduce(0, +) / Float(window)
    let last = records.suffix(window).map(\.loss).reduce(0, +) / Float(window)
    let finalStd = records.last!.normalizedOutputStd
    let collapseFloor = 0.2 / Float(dimension).squareRoot()
    print(String(format: "mean loss of the first %d steps %.4f, of the last %d steps %.4f; final z-std %.4f",
                 window, first, window, last, finalStd))
    guard last < first - 0.05 else {
      throw SelfTestFailure(message: "the loss did not fall (\(first) → \(last)); the engine is not learning")
    }
    guard finalStd > collapseFloor else {
      throw SelfTestFailure(message: "the outputs collapsed (z-std \(finalStd) < \(collapseFloor))")
    }
    print("selftest: OK")
  }
}

struct SelfTestFailure: Error, CustomStringConvertible {
  var message: String
  var description: String { "selftest failed: \(message). Hint: run `make test` to find the broken kernel." }
}
