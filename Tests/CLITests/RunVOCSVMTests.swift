import Support
import ArgumentParser
import Datasets
import Evaluation
import Foundation
import Testing
import Protocols
import Results
import TestSupport
import Tensors
@testable import SimSiamBenchCLI

/// `run voc-svm` end to end as a user runs it: a tiny backbone checkpoint, a scene VOC devkit from
/// `data make-scenes`, full and low-shot SVMs, scores in the store, the README table printed; a re-run reuses the
/// feature cache and the journal of finished SVM units and gives the same numbers.
@Suite struct RunVOCSVMTests {
  @Test func fullAndLowShotSVMsStoreScoresAndResume() throws {
    try RunLinearTests.withFolder { folder in
      let checkpoint = try RunLinearTests.tinyCheckpoint(in: folder)
      _ = try SceneSet.write(to: folder, seed: 3, size: SceneSetSize(trainval: 40, test: 40), trainItems: .syntheticForTests(),
                             testItems: .syntheticForTests())
      let voc = folder.appendingPathComponent("VOCdevkit/VOC2007").path
      let db = folder.appendingPathComponent("r.sqlite").path
      let arguments = ["run", "voc-svm", "--checkpoint", checkpoint, "--data", voc, "--low-shot",
                       "--low-shot-k", "1,2", "--costs", "0.1,1,10", "--layers", "feature4,feature5",
                       "--image-size", "32", "--db", db, "--threads", "2", "--label", "tiny",
                       "--work-dir", folder.appendingPathComponent("work").path,
                       "--feature-cache", folder.appendingPathComponent("features").path]
      var first = try #require(try SimSiamBench.parseAsRoot(arguments) as? RunVOCSVM)
      try ThreadCountLock.holding { try first.run() }

      let store = try ResultsStore(path: db)
      let run = try #require(try store.runs().last)
      #expect(run.status == .finished && run.label == "tiny" && run.checkpointSHA256?.count == 64)
      #expect(run.protocolVariant?.contains("adaptive") == true && run.protocolVariant?.contains("resize-rule=pillow13") == true)
      let scores = try store.scores(run: run.runID)
      let svm = scores.filter { $0.benchmark == Benchmark.voc07SVM && $0.metric == "mAP" && $0.isProtocolResult }
      #expect(Set(svm.compactMap(\.layer)) == ["feature4", "feature5"])
      #expect(svm.allSatisfy { $0.value >= 0 && $0.value <= 100 && $0.perClass.count == 10 })
      let lowShot = scores.filter { $0.benchmark == Benchmark.voc07LowShotSVM && $0.metric == "mAP" && $0.isProtocolResult }
      #expect(Set(lowShot.compactMap(\.k)) == [1, 2])
      #expect(lowShot.allSatisfy { $0.count == 5 && $0.std != nil })
      // Every layer's cache file exists.
      let cached = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("features").path)
      #expect(cached.filter { !$0.hasPrefix(".") }.count >= 2)

      // A re-run: same numbers, features from the cache, SVM units from the journal.
      var second = try #require(try SimSiamBench.parseAsRoot(arguments) as? RunVOCSVM)
      try ThreadCountLock.holding { try second.run() }
      let rerun = try #require(try store.runs().last)
      #expect(rerun.runID != run.runID && rerun.status == .finished)
      let again = try store.scores(run: rerun.runID)
      func values(_ scores: [Score]) -> [String] {
        scores.filter(\.isProtocolResult).map { "\($0.benchmark) \($0.layer ?? "") \($0.k ?? 0) \($0.value)" }.sorted()
      }
      #expect(values(again) == values(scores))
      let log = try String(contentsOfFile: folder.appendingPathComponent("work/log.txt").path, encoding: .utf8)
      #expect(log.contains("feature cache: reused 2 of 2 layer(s)"))
    }
  }

  @Test func aMissingDevkitIsATypedErrorNamingIt() throws {
    try RunLinearTests.withFolder { folder in
      let checkpoint = try RunLinearTests.tinyCheckpoint(in: folder)
      var command = try #require(try SimSiamBench.parseAsRoot(
        ["run", "voc-svm", "--checkpoint", checkpoint, "--data", folder.appendingPathComponent("nowhere").path,
         "--db", folder.appendingPathComponent("r.sqlite").path]) as? RunVOCSVM)
      #expect { try command.run() } throws: { error in
        String(describing: error).contains("nowhere")
      }
    }
  }

  @Test func featureDirectoryRunGivesTheCheckpointRunsScores() throws {
    // --export-features from a checkpoint run, then --features on that directory: the same SVMs on the same
    // numbers, so with --deterministic the stored scores are identical.
    try RunLinearTests.withFolder { folder in
      let checkpoint = try RunLinearTests.tinyCheckpoint(in: folder)
      _ = try SceneSet.write(to: folder, seed: 4, size: SceneSetSize(trainval: 40, test: 40),
                             trainItems: .syntheticForTests(), testItems: .syntheticForTests())
      let db = folder.appendingPathComponent("r.sqlite").path
      let export = folder.appendingPathComponent("export").path
      let common = ["--low-shot-k", "1,2", "--costs", "0.1,1,100", "--db", db, "--threads", "2", "--deterministic"]
      var fromCheckpoint = try #require(try SimSiamBench.parseAsRoot(
        ["run", "voc-svm", "--checkpoint", checkpoint, "--data", folder.appendingPathComponent("VOCdevkit/VOC2007").path,
         "--low-shot", "--layers", "feature4,feature5", "--image-size", "32", "--export-features", export,
         "--work-dir", folder.appendingPathComponent("work1").path, "--no-feature-cache"] + common) as? RunVOCSVM)
      try ThreadCountLock.holding { try fromCheckpoint.run() }
      var fromFiles = try #require(try SimSiamBench.parseAsRoot(
        ["run", "voc-svm", "--features", export, "--low-shot-samples", export + "/low_shot", "--label", "files",
         "--work-dir", folder.appendingPathComponent("work2").path] + common) as? RunVOCSVM)
      try ThreadCountLock.holding { try fromFiles.run() }

      let store = try ResultsStore(path: db)
      let runs = try store.runs()
      #expect(runs.count == 2 && runs.allSatisfy { $0.status == .finished })
      let filesRun = try #require(runs.last)
      #expect(filesRun.label == "files" && filesRun.checkpointLayout == "npy-features")
      #expect(filesRun.checkpointSHA256?.count == 64 && filesRun.datasetPath == export)
      func values(_ run: RunID) throws -> [String] {
        try store.scores(run: run).filter(\.isProtocolResult)
          .map { "\($0.benchmark) \($0.metric) \($0.layer ?? "") \($0.k ?? 0) \($0.value)" }.sorted()
      }
      let expected = try values(runs[0].runID)
      #expect(expected.count >= 2 * (1 + 2 * 4))  // per layer: mAP, chosen cost and 4 rows per k
      #expect(try values(filesRun.runID) == expected)
    }
  }

  @Test func badFeatureDirectoriesAreTypedErrorsNamingTheFile() throws {
    try RunLinearTests.withFolder { folder in
      let directory = folder.appendingPathComponent("features")
      let data = syntheticSVMLayer()
      try exportSVMInputs(to: directory, layers: [data])
      func run(_ extra: [String] = []) throws {
        var command = try #require(try SimSiamBench.parseAsRoot(
          ["run", "voc-svm", "--features", directory.path, "--db", folder.appendingPathComponent("r.sqlite").path,
           "--work-dir", folder.appendingPathComponent("work").path] + extra) as? RunVOCSVM)
        try ThreadCountLock.holding { try command.run() }
      }
      // A directory that is not there.
      var missing = try #require(try SimSiamBench.parseAsRoot(
        ["run", "voc-svm", "--features", folder.appendingPathComponent("nowhere").path,
         "--db", folder.appendingPathComponent("r.sqlite").path]) as? RunVOCSVM)
      #expect { try missing.run() } throws: { error in
        "\(error)".contains("nowhere: no such directory")
      }
      // Wrong label width: 1 column for the 2 classes of classes.txt.
      try NPY.write(NPYArray(shape: [data.trainLabels.images, 1], data: .int32([Int32](
        repeating: 1, count: data.trainLabels.images))), to: directory.appendingPathComponent("trainval_labels.npy"))
      #expect { try run() } throws: { error in
        "\(error)".contains("trainval_labels.npy") && "\(error)".contains("[images, 2]")
      }
      try exportSVMInputs(to: directory, layers: [data])
      // A feature file with other rows than its labels.
      try NPY.write(NPYArray(shape: [3, 4], data: .float32([Float](repeating: 1, count: 12))),
                    to: directory.appendingPathComponent("test_feature5.npy"))
      #expect { try run() } throws: { error in
        "\(error)".contains("test_feature5.npy") && "\(error)".contains("shape [3, 4]")
      }
      // A layer asked for that is not there.
      try exportSVMInputs(to: directory, layers: [data])
      #expect { try run(["--layers", "feature3"]) } throws: { error in
        "\(error)".contains("trainval_feature3.npy") && "\(error)".contains("does not exist")
      }
      // NaN in a feature names the file and the row.
      var broken = data
      var scalars = broken.train.withUnsafeBufferPointer { Array($0) }
      scalars[2 * broken.train.columns + 1] = .nan
      broken.train = FeatureMatrix(rows: broken.train.rows, columns: broken.train.columns, scalars: scalars)
      try exportSVMInputs(to: directory, layers: [broken])
      #expect { try run() } throws: { error in
        "\(error)".contains("row 2 of") && "\(error)".contains("trainval_feature5.npy")
      }
      // --features with --checkpoint is refused before anything runs.
      #expect(throws: (any Error).self) {
        _ = try SimSiamBench.parseAsRoot(["run", "voc-svm", "--features", directory.path, "--checkpoint", "x.pth"])
      }
      // Nothing half-done was stored as finished.
      let runs = try ResultsStore(path: folder.appendingPathComponent("r.sqlite").path).runs()
      #expect(runs.allSatisfy { $0.status != .finished })
    }
  }

  /// Two classes, 30 trainval / 20 test images, 4 dims, layer "feature5".
  func syntheticSVMLayer() -> SVMLayerData {
    var generator = SplitMix64(seed: 9)
    func split(_ images: Int) -> (FeatureMatrix, SVMLabels) {
      let labels = (0..<images).flatMap { i -> [Int32] in [i % 2 == 0 ? 1 : 0, i % 3 == 0 ? 1 : 0] }
      let scalars = (0..<images).flatMap { i -> [Float] in
        (0..<4).map { j in Float(labels[i * 2 + j % 2]) + 0.5 * generator.nextNormal() }
      }
      return (FeatureMatrix(rows: images, columns: 4, scalars: scalars), SVMLabels(classes: ["a", "b"], labels: labels))
    }
    let (train, trainLabels) = split(30)
    let (test, testLabels) = split(20)
    return SVMLayerData(layer: "feature5", train: train, test: test, trainLabels: trainLabels, testLabels: testLabels)
  }
}

@Suite struct RunVOCSVMConfigTests {
  private func command(_ arguments: [String]) throws -> RunVOCSVM {
    try #require(try SimSiamBench.parseAsRoot(["run", "voc-svm"] + arguments) as? RunVOCSVM)
  }

  /// The flags are shortcuts for config keys; `--set` wins over them; the backbone's defaults fill the rest.
  @Test func flagsAreShortcutsForConfigKeys() throws {
    let request = try command(["--checkpoint", "c.safetensors", "--data", "/d", "--image-size", "64", "--costs",
                               "1,10", "--low-shot", "--low-shot-k", "1,2", "--seed", "3", "--workers", "2",
                               "--set", "svm.folds=4"]).request()
    let config = try request.config(inChannels: 1, cifarStem: true)
    #expect(config.data.path == "/d" && config.data.imageSize == 64 && config.data.resize == 64)
    #expect(config.data.mean == [0.2860] && config.data.std == [0.3530])
    #expect(config.svm.costs == [1, 10] && config.svm.folds == 4 && config.svm.workers == 2)
    #expect(config.lowShot.enabled && config.lowShot.k == [1, 2] && config.seed == 3)
    // Without options: the protocol's defaults for the backbone (224/256 ImageNet; 32/32 for a CIFAR stem).
    let plain = try command(["--checkpoint", "c.safetensors", "--data", "/d"]).request()
    #expect(try plain.config().data.imageSize == 224 && plain.config().data.resize == 256)
    #expect(try plain.config(inChannels: 1, cifarStem: true).data.imageSize == 32)
    #expect(try !plain.config().lowShot.enabled && plain.config().settings == SVMSettings())
  }

  @Test func anUnknownKeyIsRefusedWithTheClosestKnownOne() throws {
    #expect { try command(["--checkpoint", "c", "--data", "/d", "--set", "svm.cost=[1]"]).request() } throws: {
      "\($0)".contains("svm.cost") && "\($0)".contains("Did you mean 'svm.costs'")
    }
    #expect { try command(["--checkpoint", "c", "--data", "/d", "--costs", "1,-2"]).request() } throws: {
      "\($0)".contains("svm.costs")
    }
  }

  @Test func theCommittedConfigLoadsAsTheFullProtocol() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    let file = root.appendingPathComponent("configs/benchmarks/voc07/svm_voc07.yaml").path
    let request = try command(["--checkpoint", "c", "--config", file]).request()
    let config = try request.config()
    #expect(config.lowShot.enabled && config.data.imageSize == 224 && config.svm.costs == referenceSVMCosts)
    #expect(request.configFile == file)
  }

  /// The quickstart's scene SVMs: the embedded scenes preset at the quickstart's --scene-image-size.
  @Test func theQuickstartSceneConfigIsTheEmbeddedPreset() throws {
    let plan = QuickstartPlan(workDirectory: URL(fileURLWithPath: "/tmp/qs"), database: "db", seed: nil,
                              pretrainMinutes: 10, sceneImageSize: 64)
    let config = try plan.sceneSVMRequest(checkpoint: "c", label: "l", slug: "s").config(inChannels: 1, cifarStem: true)
    #expect(config.data.imageSize == 64 && config.data.resize == 64 && config.data.mean == [0.2860])
    #expect(config.lowShot.enabled && config.lowShot.k == referenceLowShotKs && config.lowShot.samples == 5)
    #expect(config.settings == SVMSettings() && config.seed == 0)
  }
}
