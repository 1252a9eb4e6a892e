import Foundation
import Testing
import Tensors
import Checkpoints
import Datasets
@testable import Training

/// Issue 4, item 5 (faults and bad input) and the time cap: what the run does when something goes wrong or the
/// budget runs out.
@Suite(.serialized) struct PretrainFaultTests {
  /// A weight turned NaN after epoch 1's checkpoint: the run stops naming epoch 2, iteration 2, points at the
  /// epoch-1 checkpoint, writes nothing after it, and that checkpoint is finite and resumable.
  @Test func nonFiniteLossKeepsTheLastGoodCheckpoint() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let config = try tinyPretrainConfig()
    let trainer = try makeTinyPretrainer(config, workDirectory: folder)
    let good = folder.appendingPathComponent("epoch_1.safetensors")
    #expect(throws: PretrainError.nonFiniteLoss(epoch: 2, iteration: 2, lastCheckpoint: good.path)) {
      try trainer.train(onIteration: { step in
        if step.epoch == 2 && step.iterationInEpoch == 1 {
          trainer.model.backbone.stem.conv.weight.value.scalars[0] = .nan
        }
      })
    }
    #expect(Pretrainer.checkpoints(in: folder) == [good])
    #expect(Pretrainer.latestCheckpoint(in: folder) == good)
    let saved = try SafeTensors(contentsOf: good)
    #expect(saved.tensors.values.allSatisfy { $0.value.scalars.allSatisfy(\.isFinite) })
    let resumed = try makeTinyPretrainer(config, workDirectory: nil)
    try resumed.resume(from: good)
    #expect(resumed.completedEpochs == 1 && resumed.iteration == 3)
  }

  @Test func missingDatasetIsReportedBeforeTraining() throws {
    var data = try tinyPretrainConfig().data
    data.kind = "fashion-mnist"
    data.path = "/nonexistent/simsiam-bench-fashion-mnist"
    #expect {
      _ = try PretrainDataset.open(data, channels: 1)
    } throws: { error in
      "\(error)".contains("/nonexistent/simsiam-bench-fashion-mnist")
    }
    data.kind = "image-folder"
    data.path = "/nonexistent/imagenet/train"
    #expect {
      _ = try PretrainDataset.open(data, channels: 3)
    } throws: { error in
      "\(error)".contains("/nonexistent/imagenet/train")
    }
  }

  @Test func anotherArchitectureOrOtherDataIsRefusedWithTheReason() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    try makeTinyPretrainer(try tinyPretrainConfig(["schedule.epochs=1"]), workDirectory: folder).train()
    let checkpoint = try #require(Pretrainer.latestCheckpoint(in: folder))
    let deeper = try makeTinyPretrainer(try tinyPretrainConfig(["model.depth=34"]), workDirectory: nil)
    #expect {
      try deeper.resume(from: checkpoint)
    } throws: { error in
      guard case let PretrainError.incompatibleCheckpoint(path, reason) = error else { return false }
      return path == checkpoint.path && reason.contains("architecture") && reason.contains("\"depth\":18")
        && reason.contains("\"depth\":34")
    }
    let otherData = try makeTinyPretrainer(try tinyPretrainConfig(["data.limit=32"]), workDirectory: nil)
    #expect {
      try otherData.resume(from: checkpoint)
    } throws: { error in
      guard case let PretrainError.incompatibleCheckpoint(_, reason) = error else { return false }
      return reason.contains("dataset fingerprint")
    }
  }

  /// The cap only stops: the LR of the iterations trained is the full schedule's, and the summary says what was cut.
  @Test func timeCapCutsTheScheduleAndSaysSo() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    // 1e-6 minutes: spent after the first iteration.
    let config = try tinyPretrainConfig(["schedule.max_minutes=0.000001"])
    let trainer = try makeTinyPretrainer(config, workDirectory: folder)
    var epochs: [PretrainEpochMetrics] = []
    let summary = try trainer.train(onEpoch: { epochs.append($0) })
    #expect(summary.stoppedByTimeBudget && summary.iteration == 1)
    let cut = try #require(summary.scheduleCut)
    let base: Float = 0.2 * 16 / 256
    #expect(cut == ScheduleCut(maxMinutes: 0.000001, scheduledEpochs: 3, completedEpochs: 0, iterationInEpoch: 1,
                               learningRate: base, minLR: 0))
    #expect("\(cut)".contains("cosine schedule was cut") && "\(cut)".contains("0 of 3 epochs")
              && "\(cut)".contains("1 iterations of epoch 1"))
    #expect(epochs.count == 1 && !epochs[0].isComplete && epochs[0].learningRate == base)
    #expect(Pretrainer.latestCheckpoint(in: folder)?.lastPathComponent == "epoch_1-iter_1.safetensors")

    // Without a cap the same trainer finishes the schedule laid out at the start.
    let uncapped = try makeTinyPretrainer(try tinyPretrainConfig(), workDirectory: nil)
    try uncapped.resume(from: try #require(Pretrainer.latestCheckpoint(in: folder)))
    let rest = try uncapped.train()
    #expect(rest.scheduleCut == nil && !rest.stoppedByTimeBudget && rest.iteration == 9)
  }

  /// The baseline averages 3 init seeds; its first seed is this run's own initial backbone.
  @Test func randomInitBaselineAveragesThreeInitSeeds() throws {
    let config = try tinyPretrainConfig(["data.limit=64"])
    let trainer = try makeTinyPretrainer(config, workDirectory: nil)
    let monitor = try KNNMonitor(bank: trainer.dataset, queries: trainer.dataset, bankCount: 32, queryCount: 64,
                                 k: 5, temperature: 0.07, imageSize: 16, channels: 1,
                                 normalization: trainer.augmentation.normalization)
    let baseline = trainer.randomInitBaseline(knn: { monitor.accuracy(of: $0) })
    #expect(baseline.seeds == [3, 4, 5])
    #expect(baseline.accuracies.count == 3)
    #expect(baseline.accuracies[0] == monitor.accuracy(of: trainer.model.backbone))
    let mean = baseline.accuracies.reduce(0, +) / 3
    let variance = baseline.accuracies.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 2
    #expect(abs(baseline.mean - mean) < 1e-12 && abs(baseline.std - variance.squareRoot()) < 1e-12)
    #expect(abs(RandomInitBaseline(seeds: [0, 1, 2], accuracies: [0.5, 0.6, 0.7]).std - 0.1) < 1e-12)
  }
}
