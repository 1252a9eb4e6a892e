import Testing
import Training
import TestSupport

@Suite struct SyntheticSmokeRunTests {
  /// A tiny SimSiam learns the generated views: the loss falls from ≈ 0 and the outputs do not collapse.
  @Test(.tags(.slow), .enabled(if: runsSlowTests)) func lossFallsWithoutCollapse() {
    var config = SyntheticSmokeRunConfig()
    config.steps = 24
    config.batchSize = 16
    config.seed = 3
    let steps = runSyntheticSmoke(config)
    let first = steps.prefix(4).map(\.loss).reduce(0, +) / 4
    let last = steps.suffix(4).map(\.loss).reduce(0, +) / 4
    #expect(first > -0.3, "an untrained SimSiam starts near 0, got \(first)")
    #expect(last < first - 0.1, "loss did not fall: \(first) → \(last)")
    #expect(steps.last!.normalizedOutputStd > 0.5 / Float(config.model.features).squareRoot())
  }

  @Test func sameSeedGivesIdenticalLosses() {
    var config = SyntheticSmokeRunConfig()
    config.steps = 2
    config.batchSize = 4
    config.imageSize = 8
    let a = runSyntheticSmoke(config).map(\.loss), b = runSyntheticSmoke(config).map(\.loss)
    #expect(a == b)
  }
}

