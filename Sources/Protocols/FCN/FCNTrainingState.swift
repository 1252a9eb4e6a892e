// The checkpoint of an FCN run: `iter_<N>.safetensors` with every parameter and buffer of the segmentor under
// mmseg's state-dict names (`backbone.…`, `decode_head.…`, `auxiliary_head.…`), SGD's momentum buffers under
// `optimizer.momentum_buffer.<name>`, and in the metadata the iteration, the evaluations so far, the results run and
// what the run was started from (checkpoint hash, config, data fingerprints), which a resume must match.
import Checkpoints
import Foundation
import Layers
import Models
import Results
import Tensors

/// Where a run is: what `--resume` restores besides the weights.
struct FCNTrainingState {
  struct Evaluation: Codable, Equatable {
    var iteration: Int
    var mIoU: Double
  }

  var iteration: Int
  var evaluations: [Evaluation]
  var runID: RunID?

  /// Writes `iter_<iteration>.safetensors` atomically, then removes older iteration checkpoints.
  func save(_ segmentor: FCNSegmentor, optimizer: SGD, metadata: [String: String], in directory: URL) throws {
    let named = segmentor.namedParameters
    var tensors = StateDict.tensors(of: named)
    let names = Dictionary(uniqueKeysWithValues: named.map { (ObjectIdentifier($0.parameter), $0.name) })
    for (parameter, buffer) in zip(optimizer.allParameters, optimizer.momentumBuffers) {
      if let buffer, let name = names[ObjectIdentifier(parameter)] {
        tensors["optimizer.momentum_buffer.\(name)"] = StoredTensor(buffer)
      }
    }
    var metadata = metadata
    metadata["iteration"] = String(iteration)
    metadata["evaluations"] = (try? JSONEncoder().encode(evaluations)).flatMap { String(data: $0, encoding: .utf8) }
    if let runID { metadata["run_id"] = String(runID.rawValue) }
    let url = directory.appendingPathComponent("iter_\(iteration).safetensors")
    try SafeTensors(tensors: tensors, metadata: metadata).write(to: url)
    for old in FCNProtocol.checkpoints(in: directory) where old.iteration < iteration {
      try? FileManager.default.removeItem(at: old.url)
    }
  }

  /// Loads `url` into `segmentor` and `optimizer` after checking that its metadata matches `expecting`.
  static func restore(_ url: URL, into segmentor: FCNSegmentor, optimizer: SGD,
                      expecting metadata: [String: String]) throws -> FCNTrainingState {
    let file = try SafeTensors(contentsOf: url)
    for (key, value) in metadata where file.metadata[key] != value {
      throw ProtocolError.resumeMismatch(
        path: url.path,
        reason: "its \(key) differs from this run's (\(key == "config" ? "the config changed" : "other checkpoint or data"))")
    }
    guard let iterationText = file.metadata["iteration"], let iteration = Int(iterationText), iteration >= 0 else {
      throw CheckpointError.stateDictMismatch(path: url.path, missing: ["__metadata__.iteration"], unexpected: [],
                                              wrongShapes: [])
    }
    let named = segmentor.namedParameters
    try StateDict.load(file.tensors.filter { !$0.key.hasPrefix("optimizer.") }, into: named, source: url.path)
    let names = Dictionary(uniqueKeysWithValues: named.map { (ObjectIdentifier($0.parameter), $0.name) })
    let buffers: [Tensor?] = optimizer.allParameters.map { parameter in
      names[ObjectIdentifier(parameter)].flatMap { file.tensors["optimizer.momentum_buffer.\($0)"]?.value }
    }
    try optimizer.restoreMomentumBuffers(buffers)
    let evaluations = file.metadata["evaluations"].flatMap {
      try? JSONDecoder().decode([Evaluation].self, from: Data($0.utf8))
    } ?? []
    let runID = file.metadata["run_id"].flatMap(Int64.init).map(RunID.init(rawValue:))
    return FCNTrainingState(iteration: iteration, evaluations: evaluations, runID: runID)
  }
}
