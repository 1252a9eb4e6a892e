import Foundation
import Testing
import Tensors
import Checkpoints
import TestSupport
import Datasets
@testable import Training

/// A ResNet-18 (CIFAR stem) at 1/8 width on 48 generated 16×16 gray images, batch 16: 3 iterations per epoch.
func tinyPretrainConfig(_ extra: [String] = []) throws -> PretrainConfig {
  try PretrainConfig.load(yaml: nil, source: "tiny", overrides: [
    "model.width_multiplier=0.125", "model.projector_hidden=32", "model.features=32", "model.predictor_hidden=8",
    "data.kind=synthetic", "data.limit=48", "data.image_size=16", "data.workers=2",
    "schedule.batch_size=16", "schedule.epochs=3", "schedule.max_minutes=0", "optimizer.lr=0.2",
    "checkpoint.keep=2", "seed=3",
  ] + extra)
}

func makeTinyPretrainer(_ config: PretrainConfig, workDirectory: URL?) throws -> Pretrainer {
  let dataset = try PretrainDataset.open(config.data, channels: config.model.inChannels)
  return try Pretrainer(config: config, dataset: dataset, workDirectory: workDirectory, codeVersion: "test")
}

func temporaryFolder() throws -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-pretrain-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

struct Interrupted: Error {}

@Suite(.serialized) struct PretrainerTests {
  @Test func lossDecreasesOverThreeEpochs() throws {
    let trainer = try makeTinyPretrainer(try tinyPretrainConfig(), workDirectory: nil)
    var epochs: [PretrainEpochMetrics] = []
    var iterations = 0
    try trainer.train(onIteration: { _ in iterations += 1 }, onEpoch: { epochs.append($0) })
    #expect(iterations == 9)
    #expect(epochs.count == 3)
    #expect(epochs[2].meanLoss < epochs[0].meanLoss)
    #expect(epochs.allSatisfy { $0.normalizedOutputStd > 0 && !$0.isCollapsing })
    // Cosine per epoch over 3 epochs (mmcv): lr·(1 + cos(π e / 3)) / 2 at e = 0, 1, 2; lr = 0.2·16/256.
    let base: Float = 0.2 * 16 / 256
    #expect(abs(epochs[0].learningRate - base) < 1e-7)
    #expect(abs(epochs[1].learningRate - base * 0.75) < 1e-7)
    #expect(abs(epochs[2].learningRate - base * 0.25) < 1e-7)
    // The predictor keeps the base rate.
    #expect(trainer.optimizer.parameterGroups[1].learningRate == base)
  }

  @Test func checkpointsRoundTripAndArePruned() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let config = try tinyPretrainConfig()
    let trainer = try makeTinyPretrainer(config, workDirectory: folder)
    try trainer.train()
    let names = Pretrainer.checkpoints(in: folder).map(\.lastPathComponent)
    #expect(names == ["epoch_2.safetensors", "epoch_3.safetensors"])  // keep = 2
    let latest = try #require(Pretrainer.latestCheckpoint(in: folder))
    #expect(latest.lastPathComponent == "epoch_3.safetensors")

    let file = try SafeTensors(contentsOf: latest)
    #expect(file.metadata["epoch"] == "3" && file.metadata["iteration"] == "9" && file.metadata["seed"] == "3")
    #expect(file.metadata["code_version"] == "test")
    #expect(file.metadata["dataset_fingerprint"] == trainer.dataset.fingerprint)
    #expect(file.tensors["backbone.conv1.weight"] != nil)
    #expect(file.tensors["neck.fc0.weight"] != nil && file.tensors["head.predictor.fc1.bias"] != nil)
    #expect(file.tensors["backbone.bn1.num_batches_tracked"]?.dtype == .i64)
    #expect(file.tensors["optimizer.momentum_buffer.backbone.conv1.weight"] != nil)

    let restored = try makeTinyPretrainer(config, workDirectory: nil)
    try restored.resume(from: latest)
    #expect(restored.completedEpochs == 3 && restored.iteration == 9)
    #expect(StateDict.tensors(of: restored.model.namedParameters) == StateDict.tensors(of: trainer.model.namedParameters))
    #expect(restored.optimizer.momentumBuffers == trainer.optimizer.momentumBuffers)
  }

  /// The run is interrupted in-process (a callback throws in the middle of epoch 2, so nothing after epoch 1's
  /// checkpoint is saved, as after SIGKILL); a new trainer resumes from `latest` and must end bit-identical to an
  /// uninterrupted run with the same seed and thread count.
  @Test func resumeAfterAnInterruptionIsBitExact() throws {
    // Two runs compared bit for bit: no other test may change the process-wide thread count between them.
    try ThreadCountLock.holding {
      let config = try tinyPretrainConfig()
      let reference = try makeTinyPretrainer(config, workDirectory: nil)
      try reference.train()

      let folder = try temporaryFolder()
      defer { try? FileManager.default.removeItem(at: folder) }
      let first = try makeTinyPretrainer(config, workDirectory: folder)
      #expect(throws: Interrupted.self) {
        try first.train(onIteration: { if $0.epoch == 2 && $0.iterationInEpoch == 2 { throw Interrupted() } })
      }
      #expect(Pretrainer.latestCheckpoint(in: folder)?.lastPathComponent == "epoch_1.safetensors")

      let second = try makeTinyPretrainer(config, workDirectory: folder)
      try second.resume(from: try #require(Pretrainer.latestCheckpoint(in: folder)))
      #expect(second.completedEpochs == 1 && second.iteration == 3)
      try second.train()
      #expect(second.iteration == 9)
      #expect(StateDict.tensors(of: second.model.namedParameters) == StateDict.tensors(of: reference.model.namedParameters))
      #expect(second.optimizer.momentumBuffers == reference.optimizer.momentumBuffers)
    }
  }

  @Test func resumeInsideAnEpochIsBitExact() throws {
    // Two runs compared bit for bit: no other test may change the process-wide thread count between them.
    try ThreadCountLock.holding {
      // A mid-epoch checkpoint (what a time-budget stop writes) continues with the epoch's remaining batches.
      let config = try tinyPretrainConfig()
      let reference = try makeTinyPretrainer(config, workDirectory: nil)
      try reference.train()

      let folder = try temporaryFolder()
      defer { try? FileManager.default.removeItem(at: folder) }
      let first = try makeTinyPretrainer(config, workDirectory: folder)
      #expect(throws: Interrupted.self) {
        try first.train(onIteration: {
          if $0.epoch == 2 && $0.iterationInEpoch == 1 {
            try first.saveCheckpoint()
            throw Interrupted()
          }
        })
      }
      let latest = try #require(Pretrainer.latestCheckpoint(in: folder))
      #expect(latest.lastPathComponent == "epoch_2-iter_1.safetensors")
      let second = try makeTinyPretrainer(config, workDirectory: folder)
      try second.resume(from: latest)
      var epochs: [PretrainEpochMetrics] = []
      try second.train(onEpoch: { epochs.append($0) })
      #expect(epochs.map(\.epoch) == [2, 3] && epochs[0].iterations == 3)
      #expect(StateDict.tensors(of: second.model.namedParameters) == StateDict.tensors(of: reference.model.namedParameters))
    }
  }

  @Test func otherArchitectureIsRefusedOnResume() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let trainer = try makeTinyPretrainer(try tinyPretrainConfig(["schedule.epochs=1"]), workDirectory: folder)
    try trainer.train()
    let wider = try makeTinyPretrainer(try tinyPretrainConfig(["model.features=64"]), workDirectory: nil)
    #expect {
      try wider.resume(from: try #require(Pretrainer.latestCheckpoint(in: folder)))
    } throws: { error in
      guard case let PretrainError.incompatibleCheckpoint(_, reason) = error else { return false }
      return reason.contains("architecture")
    }
  }

  @Test func nonFiniteLossNamesEpochAndIteration() throws {
    let trainer = try makeTinyPretrainer(try tinyPretrainConfig(), workDirectory: nil)
    trainer.model.backbone.stem.conv.weight.value.scalars[0] = .nan
    #expect(throws: PretrainError.nonFiniteLoss(epoch: 1, iteration: 1, lastCheckpoint: nil)) {
      try trainer.train()
    }
  }

  @Test func unwritableWorkDirectoryIsReportedBeforeTraining() throws {
    let config = try tinyPretrainConfig()
    #expect {
      try makeTinyPretrainer(config, workDirectory: URL(fileURLWithPath: "/proc/simsiam-bench-cannot-write"))
    } throws: { error in
      guard case PretrainError.unwritableWorkDirectory = error else { return false }
      return true
    }
  }

  @Test func viewsDoNotDependOnWorkerCount() throws {
    let config = try tinyPretrainConfig()
    let trainer = try makeTinyPretrainer(config, workDirectory: nil)
    let (a1, a2) = try Pretrainer.makeViews([5, 1, 7], epoch: 2, seed: 3, dataset: trainer.dataset,
                                            augmentation: trainer.augmentation, channels: 1)
    let (b1, _) = try Pretrainer.makeViews([7], epoch: 2, seed: 3, dataset: trainer.dataset,
                                           augmentation: trainer.augmentation, channels: 1)
    #expect(a1.shape == [3, 16, 16, 1] && a1 != a2)
    #expect(Array(a1.scalars[(2 * 256)...]) == b1.scalars)
  }

  @Test func knnMonitorSeparatesTheSyntheticClasses() throws {
    let config = try tinyPretrainConfig(["data.limit=64"])
    let trainer = try makeTinyPretrainer(config, workDirectory: nil)
    let monitor = try KNNMonitor(bank: trainer.dataset, queries: trainer.dataset, bankCount: 64, queryCount: 64,
                                 k: 1, temperature: 0.07, imageSize: 16, channels: 1,
                                 normalization: trainer.augmentation.normalization)
    // k = 1 with the queries inside the bank: every query finds itself.
    #expect(monitor.accuracy(of: trainer.model.backbone) == 1)
  }
}

@Suite struct PretrainEpochOrderTests {
  /// Issue 13: an epoch's stored row was written (by `onEpoch`) before its checkpoint, so a crash in between left a
  /// row for an epoch with no checkpoint. `onEpoch` now hears of each epoch only once its checkpoint is on disk.
  @Test func onEpochSeesTheEpochsCheckpointOnDisk() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let trainer = try makeTinyPretrainer(try tinyPretrainConfig(["schedule.epochs=2", "checkpoint.keep=0"]),
                                         workDirectory: folder)
    var seen: [(epoch: Int, checkpoints: [String])] = []
    try trainer.train(onEpoch: { metrics in
      seen.append((metrics.epoch, Pretrainer.checkpoints(in: folder).map(\.lastPathComponent)))
    })
    #expect(seen.map(\.epoch) == [1, 2])
    #expect(seen[0].checkpoints.contains("epoch_1.safetensors"))
    #expect(seen[1].checkpoints.contains("epoch_2.safetensors"))
  }
}
