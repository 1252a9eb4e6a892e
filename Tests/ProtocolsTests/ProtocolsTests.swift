import Foundation
import Testing
import Results
import Training
@testable import Protocols

/// A ResNet-18 (CIFAR stem) at 1/8 width on 48 generated 16×16 images, batch 16: 3 iterations per epoch.
func tinyPretrainRequest(folder: URL, epochs: Int, resume: PretrainRequest.Resume = .none) throws -> PretrainRequest {
  let (config, _) = try PretrainRequest.config(file: nil, overrides: [
    "model.width_multiplier=0.125", "model.projector_hidden=32", "model.features=32", "model.predictor_hidden=8",
    "data.kind=synthetic", "data.limit=48", "data.image_size=16", "data.workers=2",
    "schedule.batch_size=16", "schedule.epochs=\(epochs)", "schedule.max_minutes=0", "optimizer.lr=0.2",
    "checkpoint.keep=0", "monitor.knn_at_end=false", "monitor.knn_interval=0",
  ], seed: 3)
  var request = PretrainRequest(config: config, configName: "tiny", workDirectory: folder.appendingPathComponent("work"),
                                resume: resume, database: folder.appendingPathComponent("r.sqlite").path)
  request.logInterval = 1000
  return request
}

func temporaryFolder() throws -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-protocols-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

@Suite(.serialized) struct PretrainProtocolTests {
  /// Issue 13: every `--resume` started a new run row, so one training was split over several runs. A resumed
  /// training continues its own row, with the resume recorded.
  @Test func aResumedTrainingContinuesItsOwnRun() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let first = try PretrainProtocol.run(try tinyPretrainRequest(folder: folder, epochs: 1))
    #expect(!first.resumedRun)
    let second = try PretrainProtocol.run(try tinyPretrainRequest(folder: folder, epochs: 2, resume: .auto))
    #expect(second.resumedRun)
    #expect(second.runID == first.runID)
    let store = try ResultsStore(path: folder.appendingPathComponent("r.sqlite").path)
    let runs = try store.runs()
    #expect(runs.count == 1)
    #expect(runs.first?.status == .finished)
    #expect(try store.epochMetrics(run: first.runID).map(\.epoch) == [1, 2])
    let resumes = try store.resumes(run: first.runID)
    #expect(resumes.count == 1)
    #expect(resumes.first?.fromEpoch == 1 && resumes.first?.previousStatus == "finished")
    #expect(resumes.first?.checkpointPath.hasSuffix("epoch_1.safetensors") == true)
    let table = RunTables.resumes(resumes)
    #expect(table.rows.count == 1 && table.rows[0][1] == "finished" && table.rows[0][2] == "1")
  }

  /// A fresh training in the same work directory (no --resume) is a new run.
  @Test func aFreshTrainingStartsANewRun() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let first = try PretrainProtocol.run(try tinyPretrainRequest(folder: folder, epochs: 1))
    let second = try PretrainProtocol.run(try tinyPretrainRequest(folder: folder, epochs: 1))
    #expect(second.runID != first.runID && !second.resumedRun)
  }
}

@Suite struct RecordingTests {
  struct Planted: Error {}

  @Test func aThrowingBodyMarksTheRunFailedAndRethrows() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let store = try ResultsStore(path: folder.appendingPathComponent("r.sqlite").path)
    let new = NewRun(kind: .evaluate, protocolName: "voc07-svm", label: "x", codeVersion: "test", threads: 1)
    #expect(throws: Planted.self) { try store.recording(new) { _ in throw Planted() } }
    let id = try store.recording(new) { run -> RunID in
      try run.add([Score(benchmark: "voc07-svm", metric: "mAP", layer: "feature5", value: 50)])
      run.finishMessage = "note"
      return run.id
    }
    let runs = try store.runs()
    #expect(runs.map(\.status) == [.failed, .finished])
    #expect(runs[0].message?.contains("Planted") == true)
    #expect(runs[1].message == "note" && runs[1].runID == id)
    #expect(try store.scores(run: id).map(\.value) == [50])
  }

  @Test func aRunStillRunningInALiveProcessCannotBeResumed() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let store = try ResultsStore(path: folder.appendingPathComponent("r.sqlite").path)
    let id = try store.beginRun(NewRun(kind: .pretrain, protocolName: "simsiam", label: "x", codeVersion: "test",
                                       threads: 1))
    #expect(throws: ResultsError.self) {
      try store.resumeRun(id, fromEpoch: 1, iteration: 3, checkpoint: "epoch_1.safetensors")
    }
  }
}

@Suite struct BackboneBuilderTests {
  /// The SHA-256 recorded with a load is of the very bytes decoded, and equals a separate hash of the file.
  @Test func theRecordedHashIsTheFilesHash() throws {
    let folder = try temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    let url = folder.appendingPathComponent("init.safetensors")
    let (config, name) = try PretrainRequest.config(file: nil, overrides: ["model.width_multiplier=0.125"], seed: 1)
    try PretrainProtocol.writeInitialWeights(of: config, name: name, to: url)
    let built = try BackboneBuilder.build(BackboneRequest(checkpoint: url.path))
    #expect(built.sha256 == (try fileSHA256(url.path)))
    #expect(built.report?.isComplete == true && !built.isRandomInit)
    let random = try BackboneBuilder.build(BackboneRequest(checkpoint: url.path, randomInit: true, seed: 4))
    #expect(random.isRandomInit && random.featureKey == "random-init-4-\(built.sha256)")
  }
}

/// Issue 14 item 14: the VOC table marks the low-shot k at which every sample is the full set, and says why.
@Suite struct VOCSVMTableTests {
  @Test func fullSetKsAreMarkedWithANote() {
    var result = VOCSVMResult(runID: RunID(1), label: "tiny", full: [], lowShot: [:], lowShotKs: [1, 3, 4],
                              shortfalls: ["dog at k=3: 2 positives < 3, all used"], fullSetKs: [3, 4])
    #expect(result.table.columns == ["Self-Supervised Config", "Best Layer", "SVM", "k=1", "k=3*", "k=4*"])
    #expect(result.fullSetNote == "* k=3,4: every class had no more images than asked, so every sample is the full "
              + "set and the samples' numbers repeat one draw.")
    result.fullSetKs = []
    #expect(result.table.columns.last == "k=4" && result.fullSetNote == nil)
  }
}
