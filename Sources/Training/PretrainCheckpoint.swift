// Pretraining checkpoints: safetensors with the model's PyTorch state-dict names (backbone.*, neck.*,
// head.predictor.*, BN running statistics and num_batches_tracked included), the SGD momentum buffers as
// `optimizer.momentum_buffer.<name>`, and metadata to resume exactly. Written atomically (temporary file, fsync,
// rename), the newest `keep` kept, `latest` naming the newest, in MMSelfSup's work_dirs/<config name>/ layout.
import Foundation
import Tensors
import Layers
import Models
import Checkpoints
import Support

extension Pretrainer {
  /// The checkpoint format tag in the metadata.
  public static let checkpointFormat = "simsiam-bench-pretrain/1"
  static let momentumPrefix = "optimizer.momentum_buffer."

  /// The default work directory: work_dirs/<config name> (MMSelfSup's convention), relative to the current folder.
  public static func defaultWorkDirectory(configName: String) -> URL {
    URL(fileURLWithPath: "work_dirs").appendingPathComponent(configName)
  }

  /// Creates the directory and proves it writable before any training.
  static func prepare(_ directory: URL) throws {
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
      let probe = directory.appendingPathComponent(".write-test-\(getpid())")
      try Data().write(to: probe)
      try FileManager.default.removeItem(at: probe)
    } catch {
      throw PretrainError.unwritableWorkDirectory(path: directory.path, reason: (error as NSError).localizedDescription)
    }
  }

  /// Tensors and metadata of the current state.
  public func checkpointContents() -> SafeTensors {
    var tensors = StateDict.tensors(of: model.namedParameters)
    let names = Dictionary(uniqueKeysWithValues: model.namedParameters.map { (ObjectIdentifier($0.parameter), $0.name) })
    for (parameter, buffer) in zip(optimizer.allParameters, optimizer.momentumBuffers) {
      guard let buffer, let name = names[ObjectIdentifier(parameter)] else { continue }
      // Stored in the engine's layout (the optimiser's), with the parameter's exported shape checked on load.
      tensors[Self.momentumPrefix + name] = StoredTensor(buffer)
    }
    let architecture = String(decoding: (try? JSONEncoder.sorted.encode(config.simSiam)) ?? Data(), as: UTF8.self)
    let metadata: [String: String] = [
      "format": Self.checkpointFormat,
      "epoch": "\(completedEpochs)",
      "iteration": "\(iteration)",
      "iteration_in_epoch": "\(iterationInEpoch)",
      "epoch_loss_sum": "\(epochLossSum)",
      "epoch_std_sum": "\(epochStdSum)",
      "config": config.json,
      "architecture": architecture,
      "seed": "\(config.seed)",
      "code_version": codeVersion,
      "dataset_fingerprint": dataset.fingerprint,
      "dataset_count": "\(dataset.count)",
      "threads": "\(Threads.count)",
      // The global batch and the step do not depend on it, so a run resumes with any N dividing the batch.
      "world_size": "\(processGroup.size)",
      // All randomness after initialisation is derived, not carried: sample i of epoch e uses
      // SplitMix64.derived(seed, e, i) for its two views and EpochPlan(seed, e) fixes the order, so
      // (seed, epoch, iteration_in_epoch) is the whole RNG state.
      "rng": "splitmix64-derived(seed=\(config.seed), epoch=\(completedEpochs), batch=\(iterationInEpoch))",
    ]
    return SafeTensors(tensors: tensors, metadata: metadata)
  }

  /// Writes a checkpoint into the work directory atomically, updates `latest`, prunes old ones. Returns its URL.
  @discardableResult
  public func saveCheckpoint() throws -> URL? {
    guard let workDirectory, processGroup.isRoot else { return nil }  // rank 0 writes; the others hold the same state
    let name = iterationInEpoch == 0 ? "epoch_\(completedEpochs).safetensors"
      : "epoch_\(completedEpochs + 1)-iter_\(iterationInEpoch).safetensors"
    let url = workDirectory.appendingPathComponent(name)
    try Self.writeAtomically(checkpointContents().encoded(), to: url)
    try Self.writeAtomically(Data((name + "\n").utf8), to: workDirectory.appendingPathComponent("latest"))
    lastCheckpoint = url
    try pruneCheckpoints(keeping: config.checkpoint.keep)
    return url
  }

  /// Temporary file in the same folder, fsync, rename over the target, fsync the folder (`AtomicFile`).
  static func writeAtomically(_ data: Data, to url: URL) throws {
    do {
      try AtomicFile.write(data, to: url)
    } catch {
      throw CheckpointError.unwritableFile(path: url.path, reason: error.reason)
    }
  }

  /// The work directory's checkpoints, oldest first: `epoch_N.safetensors` after epoch N and
  /// `epoch_N-iter_K.safetensors` inside epoch N (which sorts before epoch N's end).
  public static func checkpoints(in directory: URL) -> [URL] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    let ranked: [(key: (Int, Int), name: String)] = names.compactMap { name in
      guard name.hasPrefix("epoch_"), name.hasSuffix(".safetensors") else { return nil }
      let stem = name.dropFirst("epoch_".count).dropLast(".safetensors".count)
      let parts = stem.split(separator: "-iter_")
      guard let epoch = Int(parts[0]) else { return nil }
      if parts.count == 1 { return ((epoch, Int.max), name) }
      guard parts.count == 2, let iteration = Int(parts[1]) else { return nil }
      return ((epoch, iteration), name)
    }
    return ranked.sorted { $0.key < $1.key }.map { directory.appendingPathComponent($0.name) }
  }

  private func pruneCheckpoints(keeping keep: Int) throws {
    guard keep > 0, let workDirectory else { return }
    for url in Self.checkpoints(in: workDirectory).dropLast(keep) where url != lastCheckpoint {
      try? FileManager.default.removeItem(at: url)
    }
  }

  /// The checkpoint `latest` names in `directory`, or nil when there is none.
  public static func latestCheckpoint(in directory: URL) -> URL? {
    guard let text = try? String(contentsOf: directory.appendingPathComponent("latest"), encoding: .utf8) else {
      return nil
    }
    let url = directory.appendingPathComponent(text.trimmingCharacters(in: .whitespacesAndNewlines))
    return FileManager.default.fileExists(atPath: url.path) ? url : nil
  }

  /// Restores weights, BN statistics, momentum buffers and counters from a checkpoint of this architecture.
  /// Refuses, with the reason, checkpoints of another architecture, format or dataset.
  public func resume(from url: URL) throws {
    if PathKind(url.path) == .directory {
      throw PretrainError.incompatibleCheckpoint(
        path: url.path, reason: "it is a folder; give a checkpoint file in it, or --resume auto to take the work "
          + "directory's latest")
    }
    let file: SafeTensors
    do { file = try SafeTensors(contentsOf: url) } catch {
      throw PretrainError.incompatibleCheckpoint(path: url.path, reason: "\(error)")
    }
    let metadata = file.metadata
    func refuse(_ reason: String) -> PretrainError { .incompatibleCheckpoint(path: url.path, reason: reason) }
    guard metadata["format"] == Self.checkpointFormat else {
      throw refuse("it is not a simsiam-bench pretraining checkpoint (format '\(metadata["format"] ?? "none")', "
                     + "expected '\(Self.checkpointFormat)')")
    }
    let architecture = String(decoding: (try? JSONEncoder.sorted.encode(config.simSiam)) ?? Data(), as: UTF8.self)
    guard metadata["architecture"] == architecture else {
      throw refuse("it was written for the architecture \(metadata["architecture"] ?? "?"), but this config builds "
                     + architecture)
    }
    guard metadata["dataset_fingerprint"] == dataset.fingerprint else {
      throw refuse("it was trained on other data (dataset fingerprint \(metadata["dataset_fingerprint"] ?? "?"), "
                     + "this dataset's is \(dataset.fingerprint))")
    }
    guard let epoch = metadata["epoch"].flatMap(Int.init), let iteration = metadata["iteration"].flatMap(Int.init),
          let inEpoch = metadata["iteration_in_epoch"].flatMap(Int.init) else {
      throw refuse("its metadata lacks epoch, iteration or iteration_in_epoch")
    }
    var modelTensors: [String: StoredTensor] = [:]
    var momentum: [String: Tensor] = [:]
    for (name, tensor) in file.tensors {
      if name.hasPrefix(Self.momentumPrefix) {
        momentum[String(name.dropFirst(Self.momentumPrefix.count))] = tensor.value
      } else {
        modelTensors[name] = tensor
      }
    }
    do {
      try StateDict.load(modelTensors, into: model.namedParameters, source: url.path)
      let names = Dictionary(uniqueKeysWithValues: model.namedParameters.map { (ObjectIdentifier($0.parameter), $0.name) })
      try optimizer.restoreMomentumBuffers(optimizer.allParameters.map { momentum[names[ObjectIdentifier($0)]!] })
    } catch {
      throw refuse("\(error)")
    }
    completedEpochs = epoch
    self.iteration = iteration
    iterationInEpoch = inEpoch
    epochLossSum = metadata["epoch_loss_sum"].flatMap(Double.init) ?? 0
    epochStdSum = metadata["epoch_std_sum"].flatMap(Double.init) ?? 0
    lastCheckpoint = url
  }
}

extension JSONEncoder {
  static var sorted: JSONEncoder {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return encoder
  }
}
