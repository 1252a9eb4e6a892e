import Foundation
import Testing
import Tensors
@testable import Checkpoints

/// A file of Fixtures/pth, written by scripts/reference/make_checkpoint_fixtures.py with torch 2.13 (torch.save).
func pthFixture(_ name: String) throws -> URL {
  let folder = try #require(Bundle.module.url(forResource: "pth", withExtension: nil, subdirectory: "Fixtures"))
  return folder.appendingPathComponent(name)
}

/// The fixtures' expected values: canonical tensors and, per fixture, name rules and scalar texts.
struct ExpectedCheckpoints {
  let file: SafeTensors

  init() throws { file = try SafeTensors(contentsOf: try pthFixture("expected.safetensors")) }

  /// The canonical name of a flattened tensor name: the first [prefix, replacement] rule whose prefix matches.
  func canonicalName(_ name: String, fixture: String) throws -> String? {
    let json = try #require(file.metadata["tensors/" + fixture])
    let rules = try JSONDecoder().decode([[String]].self, from: Data(json.utf8))
    for rule in rules where name.hasPrefix(rule[0]) { return rule[1] + name.dropFirst(rule[0].count) }
    return nil
  }

  func values(fixture: String) throws -> [String: String] {
    let json = try #require(file.metadata["values/" + fixture])
    return try JSONDecoder().decode([String: String].self, from: Data(json.utf8))
  }
}

@Suite struct PyTorchCheckpointTests {
  static let layoutFixtures = ["torchvision.pth", "mmselfsup0_train.pth", "mmselfsup_zoo_backbone.pth",
                               "mmselfsup1.pth", "simsiam_official.pth.tar", "dtypes.pth", "dtypes_protocol5.pth"]

  @Test(arguments: layoutFixtures)
  func everyTensorAndValueMatchesTorch(fixture: String) throws {
    let expected = try ExpectedCheckpoints()
    let checkpoint = try PyTorchCheckpoint(contentsOf: try pthFixture(fixture))
    #expect(checkpoint.values == (try expected.values(fixture: fixture)))
    #expect(!checkpoint.tensors.isEmpty)
    for (name, tensor) in checkpoint.tensors {
      let canonical = try #require(try expected.canonicalName(name, fixture: fixture), "no rule for \(name)")
      let reference = try #require(expected.file.tensors[canonical], "\(name): no expected tensor \(canonical)")
      #expect(tensor == reference, "\(fixture): \(name) differs from \(canonical)")
    }
  }

  @Test func layoutsHoldTheirDocumentedNames() throws {
    let torchvision = try PyTorchCheckpoint(contentsOf: try pthFixture("torchvision.pth"))
    #expect(torchvision.tensors.count == 320)  // torchvision resnet50().state_dict() has 320 entries, fc included
    #expect(torchvision.tensors["conv1.weight"]?.value.shape == [2, 3, 7, 7])
    #expect(torchvision.tensors["layer4.2.bn3.num_batches_tracked"]?.dtype == .i64)

    let mmselfsup = try PyTorchCheckpoint(contentsOf: try pthFixture("mmselfsup0_train.pth"))
    #expect(mmselfsup.tensors["state_dict.encoder.0.conv1.weight"]
              == mmselfsup.tensors["state_dict.backbone.conv1.weight"])
    #expect(mmselfsup.values["meta.epoch"] == "200")
    #expect(mmselfsup.values["optimizer.param_groups.0.lr"] == "0.05")
    #expect(mmselfsup.tensors["optimizer.state.1.momentum_buffer"]?.value.shape == [2])

    let official = try PyTorchCheckpoint(contentsOf: try pthFixture("simsiam_official.pth.tar"))
    #expect(official.values["epoch"] == "100" && official.values["arch"] == "resnet50")
    #expect(official.tensors["state_dict.module.encoder.fc.6.weight"]?.value.shape == [32, 32])
    #expect(official.tensors["state_dict.module.predictor.3.bias"]?.value.shape == [32])
  }

  @Test func viewsAndDTypesAreMaterialisedLikeTorch() throws {
    // Hand-checkable facts of dtypes.pth, independent of expected.safetensors.
    let file = try PyTorchCheckpoint(contentsOf: try pthFixture("dtypes.pth"))
    let base = try #require(file.tensors["tensors.base"]).value  // [4, 6]
    let sliced = try #require(file.tensors["tensors.sliced"]).value  // base[1:, ::2]: [3, 3]
    #expect(sliced.shape == [3, 3])
    for i in 0..<3 { for j in 0..<3 { #expect(sliced[[i, j]] == base[[i + 1, 2 * j]]) } }
    // float16 [6e-8, -0.0, 65504, inf, 1e-5] rounds to [2^-24, -0, 65504, inf, 1.0013580322265625e-05].
    let special = try #require(file.tensors["tensors.half_special"]).value.scalars
    #expect(special == [0x1p-24, -0.0, 65504, .infinity, 1.0013580322265625e-05])
    #expect(special[1].sign == .minus)
    #expect(file.tensors["tensors.int32"] == StoredTensor(Tensor(shape: [2, 2], scalars: [1, -2, 3, 16_777_216]),
                                                          dtype: .i64))
    #expect(file.tensors["tensors.int64"] == StoredTensor(Tensor(shape: [], scalars: [-123_456]), dtype: .i64))
    #expect(file.tensors["tensors.scalar"] == StoredTensor(Tensor(shape: [], scalars: [3.5])))
    #expect(file.tensors["tensors.empty"]?.value.shape == [0, 4])
    #expect(file.values["big"] == "1180591620717411303424" && file.values["eps"] == "1e-05")
    #expect(file.values["int_keys.10.x"] == "1" && file.values["nothing"] == "None")
  }

  @Test func legacyFormatIsUnsupportedWithAHint() throws {
    let url = try pthFixture("legacy.pth")
    #expect(throws: PyTorchCheckpointError.legacyFormat(path: url.path)) { try PyTorchCheckpoint(contentsOf: url) }
    #expect(PyTorchCheckpointError.legacyFormat(path: "f").description.contains("torch.save(torch.load(f"))
  }

  @Test(arguments: [("hostile_system.pth", "posix.system"), ("hostile_eval.pth", "__builtin__.eval")])
  func hostilePicklesAreRefusedAndNothingRuns(fixture: String, global: String) throws {
    // The pickles would run `touch <marker>` / open(<marker>, 'w') if executed (see the script).
    let marker = "/tmp/simsiam-bench-hostile-pickle-ran"
    try? FileManager.default.removeItem(atPath: marker)
    let url = try pthFixture(fixture)
    #expect(throws: PyTorchCheckpointError.refusedGlobal(path: url.path, name: global)) {
      try PyTorchCheckpoint(contentsOf: url)
    }
    #expect(!FileManager.default.fileExists(atPath: marker))
    #expect(PyTorchCheckpointError.refusedGlobal(path: "f", name: global).description
              .contains("refuses to load global \(global)"))
  }

  @Test(arguments: [0.5, 0.9, 0.999])
  func truncatedFilesAreErrors(fraction: Double) throws {
    let bytes = try Data(contentsOf: try pthFixture("torchvision.pth"))
    let truncated = bytes.prefix(Int(Double(bytes.count) * fraction))
    #expect(throws: PyTorchCheckpointError.self) { _ = try PyTorchCheckpoint(decoding: truncated, path: "cut.pth") }
  }

  @Test func corruptedDataFailsTheChecksum() throws {
    // Flip a byte inside data/0 (torchvision.pth's conv1.weight): the zip's CRC-32 no longer matches.
    var bytes = try Data(contentsOf: try pthFixture("torchvision.pth"))
    let name = Data("/data/0".utf8)
    let header = try #require(bytes.range(of: name)).upperBound
    let offset = header + 200  // past the local header's extra field (torch pads records to 64 bytes)
    bytes[offset] ^= 0xff
    #expect {
      _ = try PyTorchCheckpoint(decoding: bytes, path: "flipped.pth")
    } throws: { error in
      guard case PyTorchCheckpointError.corruptArchive(_, let reason) = error else { return false }
      return reason.contains("CRC-32")
    }
  }

  @Test func wrongMagicIsNotAZip() throws {
    let safetensors = SafeTensors(tensors: ["a": StoredTensor(Tensor(shape: [1], scalars: [1]))]).encoded()
    for (bytes, hint) in [(Data(), "empty"), (Data("hello, world".utf8), "68 65 6c 6c"),
                          (safetensors, "safetensors")] {
      do {
        _ = try PyTorchCheckpoint(decoding: bytes, path: "x.pth")
        Issue.record("accepted \(bytes.count) bytes")
      } catch let error as PyTorchCheckpointError {
        guard case .notAZipArchive(_, let reason) = error else { Issue.record("\(error)"); continue }
        #expect(reason.contains(hint), "\(reason)")
      }
    }
  }

  @Test func missingFileIsUnreadable() {
    let url = URL(fileURLWithPath: "/nonexistent/simsiam/model.pth")
    #expect {
      try PyTorchCheckpoint(contentsOf: url)
    } throws: { error in
      guard case CheckpointError.unreadableFile(let path, _) = error else { return false }
      return path == url.path
    }
  }

  // MARK: - Hand-built archives

  /// _rebuild_tensor_v2(('storage', torch.<storage>, '0', 'cpu', count), offset, shape, strides, False, OrderedDict())
  static func tensorPickle(storage: String = "FloatStorage", count: Int, offset: Int, shape: [Int], strides: [Int])
    -> [UInt8] {
    func tuple(_ values: [Int]) -> [UInt8] { [0x28] + values.flatMap { [0x4b, UInt8($0)] } + [0x74] }
    return pickleProgram(
      pickleGlobal("torch._utils", "_rebuild_tensor_v2") + [0x28, 0x28] + pickleString("storage")
        + pickleGlobal("torch", storage) + pickleString("0") + pickleString("cpu") + [0x4b, UInt8(count), 0x74, 0x51]
        + [0x4b, UInt8(offset)] + tuple(shape) + tuple(strides) + [0x89]
        + pickleGlobal("collections", "OrderedDict") + [0x29, 0x52, 0x74, 0x52])
  }

  /// A zip with the given records under "archive/", read back through `PyTorchCheckpoint`.
  static func read(_ records: [(String, [UInt8])]) throws -> PyTorchCheckpoint {
    try withTemporaryFile("hand.pth") { url in
      try PyTorchCheckpointWriter.writeArchive(records.map { ("archive/" + $0.0, Data($0.1)) }, to: url)
      return try PyTorchCheckpoint(contentsOf: url)
    }
  }

  static let floats: [UInt8] = [Float](arrayLiteral: 0, 1, 2, 3, 4, 5).withUnsafeBytes(Array.init)

  @Test func handBuiltStridedViewIsMaterialised() throws {
    // storage [0 1 2 3 4 5], offset 1, shape [2, 2], strides [1, 2] → [[1, 3], [2, 4]].
    let file = try Self.read([("data.pkl", Self.tensorPickle(count: 6, offset: 1, shape: [2, 2], strides: [1, 2])),
                              ("data/0", Self.floats)])
    #expect(file.tensors == ["": StoredTensor(Tensor(shape: [2, 2], scalars: [1, 3, 2, 4]))])
  }

  @Test func zipWithoutDataPklOrStorageIsAnError() throws {
    do {
      _ = try Self.read([("version", Array("3\n".utf8)), ("data/0", Self.floats)])
      Issue.record("read a zip without data.pkl")
    } catch let error as PyTorchCheckpointError {
      guard case .missingRecord(_, let record) = error else { Issue.record("\(error)"); return }
      #expect(record == "<archive>/data.pkl")
    }
    do {
      _ = try Self.read([("data.pkl", Self.tensorPickle(count: 6, offset: 0, shape: [6], strides: [1]))])
      Issue.record("read a tensor without its storage record")
    } catch let error as PyTorchCheckpointError {
      guard case .missingRecord(_, let record) = error else { Issue.record("\(error)"); return }
      #expect(record == "archive/data/0")
    }
  }

  @Test(arguments: [
    (6, 0, [7], [1]),  // one element past the storage
    (6, 5, [2], [1]),  // the offset pushes the view out
    (6, 0, [2, 3], [4, 1]),  // the strides reach element 7
    (7, 0, [7], [1]),  // the record has 24 bytes, the id declares 28
  ] as [(Int, Int, [Int], [Int])])
  func viewsOutsideTheirStorageAreInvalidTensors(count: Int, offset: Int, shape: [Int], strides: [Int]) {
    #expect {
      try Self.read([("data.pkl", Self.tensorPickle(count: count, offset: offset, shape: shape, strides: strides)),
                     ("data/0", Self.floats)])
    } throws: { error in
      guard case CheckpointError.invalidTensor = error else { return false }
      return true
    }
  }

  @Test func bigEndianFilesAreUnsupported() {
    #expect {
      try Self.read([("data.pkl", Self.tensorPickle(count: 6, offset: 0, shape: [6], strides: [1])),
                     ("byteorder", Array("big".utf8)), ("data/0", Self.floats)])
    } throws: { error in
      guard case PyTorchCheckpointError.unsupportedContent(_, let reason) = error else { return false }
      return reason.contains("big-endian")
    }
  }
}
