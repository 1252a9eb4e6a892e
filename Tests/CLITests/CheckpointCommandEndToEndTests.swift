import Support
import Protocols
import ArgumentParser
import Foundation
import Testing
import Tensors
import Models
import Layers
import Datasets
@testable import Checkpoints
@testable import SimSiamBenchCLI

/// The checkpoint commands end to end with the real .pth reader and writer: exact round trips, SHA-256, strictness
/// and clean errors for damaged and hostile files.
@Suite struct CheckpointCommandEndToEndTests {
  // MARK: - Helpers

  static func simSiam(seed: UInt64) -> SimSiam {
    var generator = SplitMix64(seed: seed)
    return SimSiam(SimSiamConfig(backbone: ResNetConfig(depth: 18, widthMultiplier: 1.0 / 32),
                                 projectorHiddenFeatures: 8, features: 8, predictorHiddenFeatures: 4),
                   using: &generator)
  }

  /// Our names for `model`, with values that a lossy conversion would change: −0, a subnormal, the largest
  /// float, −(smallest normal) and an I64 counter above 2²⁴. (No NaN: the --verify check uses torch.equal.)
  static func ours(seed: UInt64) -> [String: StoredTensor] {
    var tensors = StateDict.tensors(of: simSiam(seed: seed).namedParameters)
    let name = "backbone.layer4.0.bn1.running_var"  // 16 channels
    let shape = tensors[name]!.value.shape
    let special: [Float] = [-0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, -Float.leastNormalMagnitude]
    tensors[name] = StoredTensor(Tensor(shape: shape, scalars: (0..<shape.product).map { special[$0 % 4] }))
    tensors["backbone.bn1.num_batches_tracked"] = StoredTensor(Tensor(shape: [], scalars: [16_777_216]), dtype: .i64)
    return tensors
  }

  /// Names, dtypes, shapes and every bit of every value.
  static func bits(_ tensors: [String: StoredTensor]) -> [String: String] {
    tensors.mapValues { "\($0.dtype) \($0.value.shape) \($0.value.scalars.map(\.bitPattern))" }
  }

  static func withFolder<T>(_ body: (URL) throws -> T) throws -> T {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-ckpt-e2e-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    return try body(folder)
  }

  /// A committed fixture written by torch.save (Tests/CheckpointsTests/Fixtures/pth).
  static func torchFixture(_ name: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("CheckpointsTests/Fixtures/pth/\(name)")
  }

  /// With SIMSIAM_PTH_VERIFY_DIR set, keeps `pth` and its tensors as `name.pth` / `name.safetensors` for
  /// `python3 scripts/reference/make_checkpoint_fixtures.py --verify DIR` (torch.load(f, weights_only=True)).
  static func keepForVerification(_ name: String, pth: URL, tensors: [String: StoredTensor],
                                  metadata: [String: String] = [:]) throws {
    guard let folder = ProcessInfo.processInfo.environment["SIMSIAM_PTH_VERIFY_DIR"] else { return }
    let directory = URL(fileURLWithPath: folder)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let destination = directory.appendingPathComponent(name + ".pth")
    try? FileManager.default.removeItem(at: destination)
    try FileManager.default.copyItem(at: pth, to: destination)
    try SafeTensors(tensors: tensors, metadata: metadata)
      .write(to: directory.appendingPathComponent(name + ".safetensors"))
  }

  func command<T: ParsableCommand>(_ arguments: [String], as type: T.Type) throws -> T {
    try #require(try SimSiamBench.parseAsRoot(["checkpoint"] + arguments) as? T)
  }

  func convert(_ input: URL, _ output: URL) throws -> String {
    try command(["convert", input.path, output.path], as: Checkpoint.Convert.self).convert()
  }

  // MARK: - Round trips

  @Test func safetensorsToPthToSafetensorsIsExact() throws {
    let original = Self.ours(seed: 1)
    try Self.withFolder { folder in
      let start = folder.appendingPathComponent("ours.safetensors")
      let pth = folder.appendingPathComponent("ours.pth")
      let back = folder.appendingPathComponent("back.safetensors")
      try SafeTensors(tensors: original, metadata: ["epoch": "7"]).write(to: start)
      #expect(try convert(start, pth) == "wrote \(original.count) tensors to \(pth.path)")
      let middle = try PyTorchCheckpoint(contentsOf: pth)
      // {'state_dict': {our names: tensors}, 'epoch': '7'}: the metadata survives in the .pth and back.
      #expect(Self.bits(middle.tensors) == Self.bits(Dictionary(uniqueKeysWithValues: original.map {
        ("state_dict." + $0.key, $0.value)
      })))
      #expect(middle.values["epoch"] == "7")
      _ = try convert(pth, back)
      let roundTripped = try SafeTensors(contentsOf: back)
      #expect(Self.bits(roundTripped.tensors) == Self.bits(original))
      #expect(roundTripped.metadata["epoch"] == "7")
      try Self.keepForVerification("cli_convert_from_safetensors", pth: pth, tensors: original,
                                   metadata: ["epoch": "7"])
    }
  }

  @Test(arguments: ["ours", "torchvision.pth"])
  func pthToSafetensorsToPthIsExact(source: String) throws {
    try Self.withFolder { folder in
      let start: URL
      if source == "ours" {
        start = folder.appendingPathComponent("ours.pth")
        try PyTorchCheckpointWriter.write(Self.ours(seed: 2).sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                          metadata: [:], to: start)
      } else {
        start = Self.torchFixture(source)  // written by torch.save
      }
      let middle = folder.appendingPathComponent("middle.safetensors")
      let end = folder.appendingPathComponent("end.pth")
      _ = try convert(start, middle)
      _ = try convert(middle, end)
      let original = try PyTorchCheckpoint(contentsOf: start).tensors
      #expect(original.count > 100)
      #expect(Self.bits(try SafeTensors(contentsOf: middle).tensors) == Self.bits(original))
      #expect(Self.bits(try PyTorchCheckpoint(contentsOf: end).tensors) == Self.bits(original))
      try Self.keepForVerification("cli_convert_\(source.split(separator: ".")[0])", pth: end, tensors: original)
    }
  }

  // MARK: - SHA-256

  @Test func fileSHA256MatchesKnownDigests() throws {
    try Self.withFolder { folder in
      // FIPS 180-2 "abc", the empty message, and 2²⁰ + 3 bytes (i mod 251) that span two read chunks; the
      // digests are Python's hashlib.sha256(...).hexdigest().
      let cases: [([UInt8], String)] = [
        (Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ((0..<(1 << 20) + 3).map { UInt8($0 % 251) },
         "aca6f4d81a88030dc3e4b99988449ba2943885a56a5ebda5be275f64149677fe"),
      ]
      for (index, (bytes, digest)) in cases.enumerated() {
        let url = folder.appendingPathComponent("\(index).bin")
        try Data(bytes).write(to: url)
        #expect(try fileSHA256(url.path) == digest)
      }
      #expect(throws: CheckpointError.self) { try fileSHA256(folder.appendingPathComponent("absent").path) }
    }
  }

  @Test func inspectAndLoadingRecordTheFilesSHA256() throws {
    let model = Self.simSiam(seed: 3)
    try Self.withFolder { folder in
      let url = folder.appendingPathComponent("ours.pth")
      let tensors = StateDict.tensors(of: model.namedParameters)
      try PyTorchCheckpointWriter.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                        metadata: [:], to: url)
      let digest = try fileSHA256(url.path)
      #expect(digest == Support.SHA256.hexDigest(of: try Data(contentsOf: url)))  // the one-shot path agrees
      #expect(digest.count == 64)
      let text = try command(["inspect", url.path], as: Checkpoint.Inspect.self).report()
      #expect(text.contains("\nsha256:      \(digest)\n"))

      let built = try BackboneBuilder.build(BackboneRequest(checkpoint: url.path))
      #expect(built.sha256 == digest && built.report?.sha256 == digest && built.report?.isComplete == true)
      let output = folder.appendingPathComponent("backbone.safetensors")
      let printed = try command(["extract-backbone", url.path, output.path], as: Checkpoint.ExtractBackbone.self)
        .extract()
      #expect(printed.contains("sha256:     \(digest)"))
    }
  }

  // MARK: - Strictness

  @Test func allowMissingPrintsWhatWasSkipped() throws {
    var tensors = StateDict.tensors(of: Self.simSiam(seed: 4).namedParameters)
    tensors["backbone.layer3.1.conv2.weight"] = nil
    tensors["backbone.layer9.0.conv1.weight"] = StoredTensor(Tensor.zeros([1]))
    try Self.withFolder { folder in
      let input = folder.appendingPathComponent("damaged.pth")
      try PyTorchCheckpointWriter.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                        metadata: ["epoch": "5"], to: input)
      let output = folder.appendingPathComponent("backbone.pth")
      #expect {
        try command(["extract-backbone", input.path, output.path], as: Checkpoint.ExtractBackbone.self).extract()
      } throws: { error in
        let message = SimSiamBench.fullMessage(for: error)
        return message.contains("layer3.1.conv2.weight") && message.contains("layer9.0.conv1.weight")
          && message.contains("--allow-missing")
      }
      #expect(!FileManager.default.fileExists(atPath: output.path))

      let text = try command(["extract-backbone", input.path, output.path, "--allow-missing"],
                             as: Checkpoint.ExtractBackbone.self).extract()
      #expect(text.contains(", under 'state_dict.'"))  // {'meta': …, 'state_dict': …}
      #expect(text.contains("SKIPPED, missing from the file (1): layer3.1.conv2.weight"))
      #expect(text.contains("SKIPPED, not in the model (1): layer9.0.conv1.weight"))
      let written = try PyTorchCheckpoint(contentsOf: output)
      let backboneCount = Self.simSiam(seed: 4).backbone.namedParameters.count
      #expect(written.tensors.count == backboneCount - 1)
      #expect(written.tensors["state_dict.layer3.1.conv2.weight"] == nil)
      #expect(written.tensors["state_dict.layer9.0.conv1.weight"] == nil)
      #expect(written.values["author"] == "simsiam-bench")
    }
  }

  // MARK: - Damaged and hostile files

  /// Runs `checkpoint inspect` on `url` and returns what the tool prints for the error it throws.
  func inspectError(_ url: URL) throws -> String {
    do {
      let text = try command(["inspect", url.path], as: Checkpoint.Inspect.self).report()
      Issue.record("inspect of \(url.lastPathComponent) printed a report:\n\(text)")
      return ""
    } catch {
      #expect(SimSiamBench.exitCode(for: error) != .success)
      return SimSiamBench.fullMessage(for: error)
    }
  }

  @Test(arguments: [0.3, 0.6, 0.95])
  func inspectOfATruncatedPthIsACleanError(fraction: Double) throws {
    try Self.withFolder { folder in
      let whole = folder.appendingPathComponent("whole.pth"), cut = folder.appendingPathComponent("cut.pth")
      try PyTorchCheckpointWriter.write(Self.ours(seed: 5).sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                        metadata: [:], to: whole)
      let bytes = try Data(contentsOf: whole)
      try bytes.prefix(Int(Double(bytes.count) * fraction)).write(to: cut)
      let message = try inspectError(cut)
      #expect(message.contains("Checkpoint \(cut.path)"), "\(message)")
      #expect(message.contains("zip"), "\(message)")
    }
  }

  @Test func inspectOfAZipWithoutDataPklIsACleanError() throws {
    try Self.withFolder { folder in
      let url = folder.appendingPathComponent("nodata.pth")
      try PyTorchCheckpointWriter.writeArchive([("archive/version", Data("3\n".utf8)),
                                                ("archive/data/0", Data(count: 16))], to: url)
      let message = try inspectError(url)
      #expect(message.contains("Checkpoint \(url.path) has no '<archive>/data.pkl' record"), "\(message)")
    }
  }

  @Test(arguments: [("hostile_system.pth", "posix.system"), ("hostile_eval.pth", "__builtin__.eval")])
  func inspectOfAHostilePickleIsACleanErrorAndRunsNothing(fixture: String, global: String) throws {
    // The pickles would `touch` / open this marker if anything in them ran (make_checkpoint_fixtures.py).
    let marker = "/tmp/simsiam-bench-hostile-pickle-ran"
    try? FileManager.default.removeItem(atPath: marker)
    let url = Self.torchFixture(fixture)
    #expect(FileManager.default.fileExists(atPath: url.path))
    let message = try inspectError(url)
    #expect(message.contains("refuses to load global \(global)"), "\(message)")
    #expect(!FileManager.default.fileExists(atPath: marker))
  }
}
