import Support
import ArgumentParser
import Datasets
import Foundation
import Testing
import Tensors
import Checkpoints
import Protocols
import Results
import TestSupport
@testable import SimSiamBenchCLI

@Suite struct ParsingTests {
  @Test func sharedOptionsParse() throws {
    let command = try #require(try SimSiamBench.parseAsRoot(["pretrain", "--threads", "2", "--seed", "42",
                                                             "--db", "out/r.sqlite"]) as? Pretrain)
    #expect(command.common.threads == 2)
    #expect(command.common.seed == 42)
    #expect(command.common.db == "out/r.sqlite")
  }

  @Test func defaultsUseAllCoresAndTheDefaultDatabase() throws {
    let command = try #require(try SimSiamBench.parseAsRoot(["results", "list"]) as? Results.List)
    #expect(command.common.threads == 0)
    #expect(command.common.seed == nil)
    #expect(command.common.db == "results/simsiam.sqlite")
  }

  @Test func negativeThreadsAreRejected() {
    #expect(throws: (any Error).self) { try SimSiamBench.parseAsRoot(["pretrain", "--threads=-3"]) }
  }

  /// The `run` subcommands still planned (their owners replace them one by one).
  static let plannedRunCommands: [String] = RunCommand.configuration.subcommands.compactMap { command in
    command is any PlannedCommand.Type ? command._commandName : nil
  }

  @Test func plannedCommandsSayTheyAreNotImplemented() throws {
    for name in Self.plannedRunCommands {
      // Extra arguments are accepted so the honest message, not a parse error, is what the user sees.
      var command = try SimSiamBench.parseAsRoot(["run", name, "--threads", "1", "--some-future-flag", "x"])
      #expect {
        try ThreadCountLock.holding { try command.run() }
      } throws: { error in
        let text = String(describing: error)
        return error is NotImplementedYet && text.contains("simsiam-bench \(name)")
          && text.contains("not implemented yet in this version")
      }
    }
    // A generic Error exits with EXIT_FAILURE, not success.
    #expect(SimSiamBench.exitCode(for: NotImplementedYet(command: "run")) != .success)
    // `compare` is built: it parses its own options and rejects unknown ones.
    #expect(throws: (any Error).self) { try SimSiamBench.parseAsRoot(["compare", "--some-future-flag", "x"]) }
  }

  @Test func everyCommandGroupIsRegisteredWithAnAbstract() {
    let names = SimSiamBench.configuration.subcommands.map { $0._commandName }
    #expect(names == ["quickstart", "pretrain", "run", "results", "report", "compare", "checkpoint", "data",
                      "selftest", "eval"])
    for subcommand in SimSiamBench.configuration.subcommands {
      #expect(!subcommand.configuration.abstract.isEmpty)
    }
    #expect(SimSiamBench.configuration.version == SimSiamBench.version)
  }

  @Test func checkpointInspectParses() throws {
    let command = try #require(try SimSiamBench.parseAsRoot(["checkpoint", "inspect", "a.safetensors", "--tensors"])
                                 as? Checkpoint.Inspect)
    #expect(command.file == "a.safetensors")
    #expect(command.listsTensors)
    #expect(throws: (any Error).self) { try SimSiamBench.parseAsRoot(["checkpoint", "inspect"]) }
  }
}

@Suite struct InspectTests {
  @Test func reportsCountsShapesAndMetadata() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let url = folder.appendingPathComponent("tiny.safetensors")
    try SafeTensors(tensors: [
      "conv1.weight": StoredTensor(Tensor.zeros([4, 3, 3, 3])),  // 108 scalars
      "bn1.weight": StoredTensor(Tensor.zeros([4])),
      "bn1.running_mean": StoredTensor(Tensor.zeros([4])),
      "bn1.num_batches_tracked": StoredTensor(Tensor(shape: [], scalars: [9]), dtype: .i64),
      "fc.weight": StoredTensor(Tensor.zeros([2, 4])),
    ], metadata: ["epoch": "5"]).write(to: url)

    let command = try #require(try SimSiamBench.parseAsRoot(["checkpoint", "inspect", url.path, "--tensors"])
                                 as? Checkpoint.Inspect)
    let text = try command.report()
    #expect(text.contains("tensors:     5 (4 F32, 1 I64)"))
    #expect(text.contains("parameters:  120 (all scalars incl. BN running statistics: 125)"))  // 108 + 4 + 8
    #expect(text.contains("conv1  1 tensor, 108 scalars"))
    #expect(text.contains("bn1.num_batches_tracked  I64 []"))
    #expect(text.contains("conv1.weight             F32 [4, 3, 3, 3]"))
    #expect(text.contains("epoch = 5"))
  }

  @Test func missingFileIsATypedError() throws {
    let command = try #require(try SimSiamBench.parseAsRoot(["checkpoint", "inspect", "/nonexistent/x.safetensors"])
                                 as? Checkpoint.Inspect)
    #expect(throws: CheckpointError.self) { try command.report() }
  }
}

@Suite struct SelfTestParsingTests {
  @Test func rejectsTooFewStepsAndTinyBatches() {
    #expect(throws: (any Error).self) { try SimSiamBench.parseAsRoot(["selftest", "--steps", "5"]) }
    #expect(throws: (any Error).self) { try SimSiamBench.parseAsRoot(["selftest", "--batch-size", "2"]) }
    #expect(throws: Never.self) { try SimSiamBench.parseAsRoot(["selftest", "--steps", "12", "--threads", "1"]) }
  }
}

@Suite struct ResultsCommandTests {
  /// A database with a finished VOC SVM run and a running pretraining run.
  static func makeDatabase() throws -> (folder: URL, path: String, svm: RunID, pretrain: RunID) {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-cli-\(UUID().uuidString)")
    let path = folder.appendingPathComponent("results.sqlite").path
    let store = try ResultsStore(path: path)
    let svm = try store.beginRun(NewRun(kind: .evaluate, protocolName: "voc07-svm", label: "quick, 5 epochs",
                                        configFile: "quick.json", checkpointSHA256: "abc", codeVersion: "0.1.0",
                                        threads: 2))
    try store.addScores([
      Score(benchmark: Benchmark.voc07SVM, metric: "mAP", layer: "feature5", value: 61.234,
            perClass: [ClassValue(className: "aeroplane", value: 70.5), ClassValue(className: "bird", value: 52)]),
      Score(benchmark: Benchmark.voc07LowShotSVM, metric: "mAP", layer: "feature5", k: 1, value: 20.5, count: 5,
            std: 1.25),
    ], to: svm)
    try store.finishRun(svm)
    let pretrain = try store.beginRun(NewRun(kind: .pretrain, protocolName: "simsiam", label: "quick",
                                             codeVersion: "0.1.0", threads: 2))
    try store.addEpochMetric(EpochMetric(epoch: 0, loss: -0.25, learningRate: 0.05, outputStd: 0.021,
                                         imagesPerSecond: 123.4), to: pretrain)
    return (folder, path, svm, pretrain)
  }

  @Test func listShowsEveryRunWithItsStatus() throws {
    let database = try Self.makeDatabase()
    defer { try? FileManager.default.removeItem(at: database.folder) }
    let command = try #require(try SimSiamBench.parseAsRoot(["results", "list", "--db", database.path])
                                 as? Results.List)
    let lines = try command.output().split(separator: "\n")
    #expect(lines.count == 3)
    #expect(lines[0].hasPrefix("ID  Status    Kind      Protocol   Label"))
    #expect(lines[1].hasPrefix("1   finished  evaluate  voc07-svm  quick, 5 epochs"))
    #expect(lines[1].hasSuffix("2"))  // two scores
    #expect(lines[2].hasPrefix("2   running   pretrain  simsiam"))
  }

  @Test func showPrintsProvenanceScoresClassesAndEpochs() throws {
    let database = try Self.makeDatabase()
    defer { try? FileManager.default.removeItem(at: database.folder) }
    let svm = try #require(try SimSiamBench.parseAsRoot(["results", "show", "1", "--db", database.path])
                             as? Results.Show)
    let text = try svm.output()
    #expect(text.contains("status:              finished"))
    #expect(text.contains("checkpoint sha256:   abc"))
    #expect(text.contains("voc07-svm          mAP     feature5                          61.234  1            2"))
    #expect(text.contains("voc07-lowshot-svm  mAP     feature5  1                       20.5    5      1.25"))
    #expect(text.contains("aeroplane  70.5"))
    let pretrain = try #require(try SimSiamBench.parseAsRoot(["results", "show", "2", "--db", database.path])
                                  as? Results.Show)
    #expect(try pretrain.output().contains("0      -0.25  0.05  0.021       123.4"))
    let missing = try #require(try SimSiamBench.parseAsRoot(["results", "show", "9", "--db", database.path])
                                 as? Results.Show)
    #expect(throws: ResultsError.unknownRun(id: 9, path: database.path)) { try missing.output() }
  }

  @Test func deleteRemovesTheRun() throws {
    let database = try Self.makeDatabase()
    defer { try? FileManager.default.removeItem(at: database.folder) }
    let command = try #require(try SimSiamBench.parseAsRoot(["results", "delete", "1", "--db", database.path])
                                 as? Results.Delete)
    #expect(try command.output().contains("Deleted run 1 (voc07-svm, quick, 5 epochs, 2 scores)"))
    #expect(try ResultsStore(path: database.path).runs().map(\.id) == [database.pretrain])
    #expect(throws: ResultsError.self) { try command.output() }
  }

  @Test func exportWritesCSVWithProvenance() throws {
    let database = try Self.makeDatabase()
    defer { try? FileManager.default.removeItem(at: database.folder) }
    #expect(throws: (any Error).self) { try SimSiamBench.parseAsRoot(["results", "export", "--db", database.path]) }
    let output = database.folder.appendingPathComponent("out/scores.csv").path
    let command = try #require(try SimSiamBench.parseAsRoot(["results", "export", "--csv", "--output", output,
                                                             "--db", database.path]) as? Results.Export)
    try ThreadCountLock.holding { try command.run() }
    let lines = try String(contentsOfFile: output, encoding: .utf8).components(separatedBy: "\r\n")
    #expect(lines.count == 4)  // header, two scores, final line break
    #expect(lines[0].hasPrefix("run_id,status,kind,protocol,"))
    #expect(lines[1].hasPrefix("1,finished,evaluate,voc07-svm,,\"quick, 5 epochs\",quick.json,,abc,"))
    #expect(lines[1].hasSuffix(",voc07-svm,mAP,feature5,,,,,61.234,1,"))  // k, sample, cost, epoch empty
    #expect(lines[2].hasSuffix(",voc07-lowshot-svm,mAP,feature5,1,,,,20.5,5,1.25"))
  }

  @Test func reportMarkdownRendersTheStoredScores() throws {
    let database = try Self.makeDatabase()
    defer { try? FileManager.default.removeItem(at: database.folder) }
    let command = try #require(try SimSiamBench.parseAsRoot(["report", "markdown", "--db", database.path])
                                 as? Report.Markdown)
    let text = try command.rendered()
    #expect(text.contains("#### VOC SVM / Low-shot SVM"))
    #expect(text.contains("| [quick, 5 epochs](quick.json) | feature5   | 61.23 | 20.50 | –   | –   |"))
    #expect(!text.contains("ImageNet Linear Evaluation"))
  }

  @Test(arguments: [["results", "list"], ["results", "show", "1"], ["results", "delete", "1"],
                    ["results", "export", "--csv"], ["report", "markdown"]])
  func aMissingDatabaseIsAHelpfulError(_ arguments: [String]) throws {
    let path = "/nonexistent-\(UUID().uuidString)/r.sqlite"
    var command = try SimSiamBench.parseAsRoot(arguments + ["--db", path])
    #expect(throws: ResultsError.missingDatabase(path: path)) { try command.run() }
    #expect(!FileManager.default.fileExists(atPath: path))
  }
}

@Suite struct DataCheckCommandTests {
  @Test func parsesFormatsAndRejectsBadOptions() throws {
    let command = try #require(try SimSiamBench.parseAsRoot(["data", "check", "--data", "x", "--format", "voc"])
                                 as? DataCommand.Check)
    #expect(command.format == .voc && command.data == "x" && command.list == 10)
    #expect(throws: (any Error).self) { try SimSiamBench.parseAsRoot(["data", "check"]) }
    #expect(throws: (any Error).self) { try SimSiamBench.parseAsRoot(["data", "check", "--data", "x", "--format", "zip"]) }
    #expect(throws: (any Error).self) {
      try SimSiamBench.parseAsRoot(["data", "check", "--data", "x", "--format", "voc", "--root", "y"])
    }
  }

  /// Issue 19 item 5: the scene design's knobs reach the generator's configuration; the defaults draw the default
  /// scenes; out-of-range or crossed ranges are refused with the option named.
  @Test func makeScenesDesignOptionsReachTheConfigurationAndAreRangeChecked() throws {
    let plain = try #require(try SimSiamBench.parseAsRoot(["data", "make-scenes", "--out", "/tmp/x"])
                               as? DataCommand.MakeScenes)
    #expect(try plain.sceneConfiguration() == SceneConfiguration())
    let design = try #require(try SimSiamBench.parseAsRoot(
      ["data", "make-scenes", "--out", "/tmp/x", "--min-side", "64", "--max-side", "80", "--min-scale", "1",
       "--max-scale", "1.25", "--min-objects", "0", "--max-objects", "2", "--background-brightness", "0.2",
       "--tint-probability", "0"]) as? DataCommand.MakeScenes)
    let c = try design.sceneConfiguration()
    #expect(c.imageSizes == 64...80 && c.scales == 1...1.25 && c.objectCounts == 0...2)
    #expect(c.backgroundBrightness == 0.2 && c.tintProbability == 0)
    for (arguments, option) in [(["--min-side", "4"], "--min-side"), (["--min-side", "90", "--max-side", "80"], "--max-side"),
                                (["--min-scale", "2", "--max-scale", "1.5"], "--min-scale"),
                                (["--min-scale", "0.1"], "--min-scale"), (["--max-objects", "33"], "--max-objects"),
                                (["--min-objects", "3", "--max-objects", "2"], "--max-objects")] {
      #expect(throws: (any Error).self, "\(arguments)") {
        try SimSiamBench.parseAsRoot(["data", "make-scenes", "--out", "/tmp/x"] + arguments)
      }
      let message = SimSiamBench.message(for: Self.parseError(["data", "make-scenes", "--out", "/tmp/x"] + arguments))
      #expect(message.contains(option), "\(arguments): \(message)")
    }
  }

  static func parseError(_ arguments: [String]) -> any Error {
    do { _ = try SimSiamBench.parseAsRoot(arguments) } catch { return error }
    return CancellationError()
  }

  @Test func checksAnImageFolderAndFailsWhenFilesAreMissing() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder.appendingPathComponent("cls"), withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    try Data([0xFF, 0xD8, 0xFF, 0xD9]).write(to: folder.appendingPathComponent("cls/a.jpg"))
    let command = try #require(try SimSiamBench.parseAsRoot(["data", "check", "--data", folder.path])
                                 as? DataCommand.Check)
    let result = try command.check()
    #expect(result.isComplete)
    #expect(result.rendered().contains("format:       imagefolder"))
    try "cls/a.jpg 0\ncls/b.jpg 0\n".write(to: folder.appendingPathComponent("list.txt"), atomically: true,
                                           encoding: .utf8)
    var list = try SimSiamBench.parseAsRoot(["data", "check", "--data", folder.appendingPathComponent("list.txt").path])
    #expect(throws: ExitCode.failure) { try list.run() }
  }
}

/// Issue 14 item 7: `data check` reads CRLF lists as LF ones, and fails on a missing class list or on a class list
/// that names an image its split does not list.
@Suite struct DataCheckVOCListTests {
  func check(_ root: URL) throws -> (DatasetCheck, passes: Bool) {
    var command = try SimSiamBench.parseAsRoot(["data", "check", "--data", root.path])
    let result = try #require(command as? DataCommand.Check).check()
    do { try command.run() } catch let code as ExitCode where code == .failure { return (result, false) }
    return (result, true)
  }

  @Test func crlfListsPassAndBrokenClassListsFail() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-cli-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    _ = try SceneSet.write(to: folder, seed: 1, size: SceneSetSize(trainval: 6, test: 6),
                           trainItems: .syntheticForTests(), testItems: .syntheticForTests())
    let root = folder.appendingPathComponent("VOCdevkit/VOC2007")
    let main = root.appendingPathComponent("ImageSets/Main")
    let (lf, lfPasses) = try check(root)
    #expect(lfPasses)
    for name in try FileManager.default.contentsOfDirectory(atPath: main.path) where name.hasSuffix(".txt") {
      let url = main.appendingPathComponent(name)
      let text = try String(contentsOf: url, encoding: .utf8)
      try Data(text.replacingOccurrences(of: "\n", with: "\r\n").utf8).write(to: url)
    }
    let (crlf, crlfPasses) = try check(root)
    #expect(crlfPasses && crlf.counts == lf.counts)
    #expect(crlf.counts.first { $0.name == "trainval images" }?.value == 6)

    let classList = try #require(try FileManager.default.contentsOfDirectory(atPath: main.path)
                                   .filter { $0.hasSuffix("_trainval.txt") }.sorted().first)
    let saved = try Data(contentsOf: main.appendingPathComponent(classList))
    try FileManager.default.removeItem(at: main.appendingPathComponent(classList))
    let (missing, missingPasses) = try check(root)
    #expect(!missingPasses && missing.missing == ["ImageSets/Main/\(classList)"])

    try (saved + Data("stray_image 1\r\n".utf8)).write(to: main.appendingPathComponent(classList))
    let (stray, strayPasses) = try check(root)
    #expect(!strayPasses && stray.unreadable.map(\.path) == ["ImageSets/Main/\(classList)"])
    #expect(stray.rendered().contains("'stray_image'"))
  }
}

@Suite struct QuickstartSeedTests {
  /// Issue 13: `quickstart --seed 7` was ignored (the inner pretrain saw --seed in the outer process's arguments and
  /// forced its default). Every protocol request of the plan carries the seed.
  @Test func theSeedReachesEveryStep() throws {
    let command = try #require(try SimSiamBench.parseAsRoot(["quickstart", "--seed", "7", "--work-dir", "/tmp/qs"])
                                 as? Quickstart)
    let plan = command.plan
    #expect(try plan.pretrainRequest().config.seed == 7)
    #expect(try plan.sceneSVMRequest(checkpoint: "c", label: "l", slug: "s").config().seed == 7)
    #expect(try plan.linearRequest(checkpoint: "c", label: "l", slug: "s").config.seed == 7)
    #expect(try plan.knnRequest(checkpoint: "c", label: "l", slug: "s").config.seed == 7)
    let fcn = try plan.sceneFCNRequest(checkpoint: "c", label: "l", slug: "s")
    #expect(fcn.config.seed == 7 && fcn.configName == "fcn_quick-d8_scenes" && fcn.resume)
    #expect(fcn.config.data.path == "/tmp/qs/scenes/VOCdevkit/VOC2007")
    let unseeded = try #require(try SimSiamBench.parseAsRoot(["quickstart"]) as? Quickstart)
    #expect(try unseeded.plan.pretrainRequest().config.seed == 0)
  }

  /// Issue 19 item 5: the scene SVMs read their own devkit, drawn at the feature input's side (no rescaling), while
  /// the miniatures keep the default scenes.
  @Test func theSceneSVMsUseTheirOwnScenesAtTheInputSide() throws {
    let command = try #require(try SimSiamBench.parseAsRoot(["quickstart", "--work-dir", "/tmp/qs"]) as? Quickstart)
    let plan = command.plan
    let svm = plan.sceneSVMRequest(checkpoint: "c", label: "l", slug: "s")
    guard case let .checkpoint(_, data) = svm.input else { Issue.record("not a checkpoint request"); return }
    #expect(data == "/tmp/qs/svm-scenes/VOCdevkit/VOC2007")
    let config = try svm.config(inChannels: 1, cifarStem: true)
    #expect(config.data.imageSize == 64 && config.data.resize == 64 && config.resizeMode == .squash)
    let arguments = plan.svmSceneArguments(scenes: command.svmScenes)
    let make = try #require(try SimSiamBench.parseAsRoot(["data", "make-scenes", "--out", "/tmp/x"] + arguments)
                              as? DataCommand.MakeScenes)
    #expect(make.sceneSetSize == SceneSetSize(trainval: 500, test: 500))
    let scenes = try make.sceneConfiguration()
    #expect(scenes.imageSizes == 64...64 && scenes.scales == 1...1.25)
    #expect(try plan.sceneFCNRequest(checkpoint: "c", label: "l", slug: "s").config.data.path
              == "/tmp/qs/scenes/VOCdevkit/VOC2007")
    #expect(throws: (any Error).self) {
      try SimSiamBench.parseAsRoot(["quickstart", "--scene-image-size", "32"])
    }
    // Its compare judges pretrained against random init with a noise band.
    let compare = try #require(try SimSiamBench.parseAsRoot(QuickstartPlan.compareArguments(database: "db"))
                                 as? Compare)
    #expect(compare.noiseBand && compare.baselineLabel == QuickstartPlan.randomLabel && compare.tolerance.isEmpty)
    #expect(throws: (any Error).self) {
      try SimSiamBench.parseAsRoot(["compare", "--reference", "mmselfsup-100e", "--noise-band"])
    }
  }
}
