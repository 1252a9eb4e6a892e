import Foundation
import Testing
import Tensors
@testable import Checkpoints

/// Set SIMSIAM_PTH_VERIFY_DIR to keep the files written here (name.pth next to name.safetensors) for
/// `python3 scripts/reference/make_checkpoint_fixtures.py --verify DIR`, which loads them with
/// torch.load(f, weights_only=True) and compares them exactly.
private func keepForVerification(_ name: String, pth: URL, source: SafeTensors) throws {
  guard let folder = ProcessInfo.processInfo.environment["SIMSIAM_PTH_VERIFY_DIR"] else { return }
  let directory = URL(fileURLWithPath: folder)
  try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  let destination = directory.appendingPathComponent(name + ".pth")
  try? FileManager.default.removeItem(at: destination)
  try FileManager.default.copyItem(at: pth, to: destination)
  try source.write(to: directory.appendingPathComponent(name + ".safetensors"))
}

@Suite struct PyTorchCheckpointWriterTests {
  static func sample(seed: UInt64) -> [(String, StoredTensor)] {
    var rng = SplitMix64(seed: seed)
    return [
      ("conv1.weight", StoredTensor(Tensor.randomNormal([4, 3, 3, 3], using: &rng))),
      ("bn1.running_var", StoredTensor(Tensor(shape: [4], scalars: [1, .greatestFiniteMagnitude, -0.0, 1e-30]))),
      ("bn1.num_batches_tracked", StoredTensor(Tensor(shape: [], scalars: [16_777_216]), dtype: .i64)),
      ("fc.bias", StoredTensor(Tensor(shape: [300], scalars: (0..<300).map { Float($0) - 150.5 }))),
      ("labels", StoredTensor(Tensor(shape: [2, 2], scalars: [-1, 0, 70_000, -2_000_000]), dtype: .i64)),
      ("empty", StoredTensor(Tensor.zeros([0, 4]))),
    ]
  }

  @Test func roundTripsTensorsExactly() throws {
    let tensors = Self.sample(seed: 1)
    try withTemporaryFile("plain.pth") { url in
      try PyTorchCheckpointWriter.write(tensors, metadata: [:], to: url)
      let file = try PyTorchCheckpoint(contentsOf: url)
      #expect(file.tensors == Dictionary(uniqueKeysWithValues: tensors))
      #expect(file.values.isEmpty)
      try keepForVerification("plain", pth: url,
                              source: SafeTensors(tensors: Dictionary(uniqueKeysWithValues: tensors)))
    }
  }

  @Test func metadataGoesIntoMetaBesideTheStateDict() throws {
    let tensors = Self.sample(seed: 2)
    let metadata = ["epoch": "100", "arch": "resnet50", "config": #"{"lr": 0.05, "path": "a/b"}"#, "note": "ε ≈ 1"]
    try withTemporaryFile("meta.pth") { url in
      try PyTorchCheckpointWriter.write(tensors, metadata: metadata, to: url)
      let file = try PyTorchCheckpoint(contentsOf: url)
      #expect(file.tensors == Dictionary(uniqueKeysWithValues: tensors.map { ("state_dict." + $0.0, $0.1) }))
      #expect(file.values == Dictionary(uniqueKeysWithValues: metadata.map { ("meta." + $0.key, $0.value) }))
      try keepForVerification("meta", pth: url, source: SafeTensors(tensors: Dictionary(uniqueKeysWithValues: tensors),
                                                                    metadata: metadata))
    }
  }

  @Test func safetensorsToPthAndBackIsExact() throws {
    let original = SafeTensors(tensors: Dictionary(uniqueKeysWithValues: Self.sample(seed: 3)),
                               metadata: ["format": "pt"])
    try withTemporaryFile("converted.pth") { url in
      try PyTorchCheckpointWriter.write(original.tensors.sorted { $0.key < $1.key }, metadata: original.metadata,
                                        to: url)
      let file = try PyTorchCheckpoint(contentsOf: url)
      let tensors = file.tensors.map { (String($0.key.dropFirst("state_dict.".count)), $0.value) }
      let metadata = file.values.map { (String($0.key.dropFirst("meta.".count)), $0.value) }
      let back = SafeTensors(tensors: Dictionary(uniqueKeysWithValues: tensors),
                             metadata: Dictionary(uniqueKeysWithValues: metadata))
      #expect(back == original)
      #expect(SafeTensors(tensors: back.tensors, metadata: back.metadata).encoded() == original.encoded())
    }
  }

  @Test func torchFixtureToSafetensorsToPthIsExact() throws {
    // torch.save → our reader → safetensors → our writer → our reader: the same tensors, bit for bit.
    let torchvision = try PyTorchCheckpoint(contentsOf: try pthFixture("torchvision.pth"))
    try withTemporaryFile("torchvision.safetensors") { url in
      try SafeTensors(tensors: torchvision.tensors).write(to: url)
      let safetensors = try SafeTensors(contentsOf: url)
      let pth = url.deletingPathExtension().appendingPathExtension("pth")
      try PyTorchCheckpointWriter.write(safetensors.tensors.sorted { $0.key < $1.key }, metadata: [:], to: pth)
      #expect(try PyTorchCheckpoint(contentsOf: pth).tensors == torchvision.tensors)
      try keepForVerification("torchvision_roundtrip", pth: pth, source: safetensors)
    }
  }

  @Test func replacesAnExistingFile() throws {
    try withTemporaryFile("replace.pth") { url in
      try Data("old".utf8).write(to: url)
      let tensors = [("w", StoredTensor(Tensor(shape: [1], scalars: [2])))]
      try PyTorchCheckpointWriter.write(tensors, metadata: [:], to: url)
      #expect(try PyTorchCheckpoint(contentsOf: url).tensors == ["w": tensors[0].1])
      let leftovers = try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
      #expect(leftovers == ["replace.pth"])
    }
  }

  @Test func unwritableDestinationIsAnError() {
    let url = URL(fileURLWithPath: "/nonexistent/simsiam/out.pth")
    #expect {
      try PyTorchCheckpointWriter.write([], metadata: [:], to: url)
    } throws: { error in
      guard case CheckpointError.unwritableFile(let path, _) = error else { return false }
      return path == url.path
    }
  }

  @Test func writesTheRecordsTorchExpects() throws {
    try withTemporaryFile("records.pth") { url in
      try PyTorchCheckpointWriter.write(Self.sample(seed: 4), metadata: [:], to: url)
      let bytes = try Data(contentsOf: url)
      for record in ["archive/data.pkl", "archive/byteorder", "archive/version", "archive/data/0", "archive/data/5"] {
        #expect(bytes.range(of: Data(record.utf8)) != nil, "no \(record)")
      }
      // data.pkl starts with PROTO 2 and builds a collections.OrderedDict.
      let pickle = PyTorchCheckpointWriter.pickled(Self.sample(seed: 4), metadata: [:])
      #expect(pickle.starts(with: [0x80, 0x02, 0x63] + Array("collections\nOrderedDict\n".utf8)))
      #expect(pickle.last == 0x2e)
    }
  }
}
