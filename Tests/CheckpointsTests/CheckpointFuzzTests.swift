// Seeded, time-bounded fuzzing of the checkpoint readers (issue 14): small valid .pth and .safetensors files,
// mutated by bit flips, truncation, byte insertion and deletion, and length fields set to hostile values. Every
// input must decode or throw a typed checkpoint error, each within a time bound; a crash fails the run.
import Foundation
import Testing
import Tensors
@testable import Checkpoints

/// What happened to the inputs of one fuzz run.
private struct FuzzOutcomes {
  var decoded = 0, refused = 0
  var slowest: Duration = .zero
  var wrongErrors: [String] = []

  /// Runs `decode`, which must return or throw `PyTorchCheckpointError` / `CheckpointError`.
  mutating func run(_ label: @autoclosure () -> String, _ decode: () throws -> Void) {
    let start = ContinuousClock.now
    do {
      try decode()
      decoded += 1
    } catch is PyTorchCheckpointError {
      refused += 1
    } catch is CheckpointError {
      refused += 1
    } catch {
      if wrongErrors.count < 5 { wrongErrors.append("\(label()): \(type(of: error)) \(error)") }
    }
    slowest = max(slowest, ContinuousClock.now - start)
  }
}

/// Mutations of a byte string, drawn from a seeded generator.
private struct Mutator {
  var rng: SplitMix64

  /// Values a length or offset field is set to: edges, the input's own size, huge.
  static let hostileValues: [UInt64] = [0, 1, 7, 8, 0x7f, 0xff, 0xffff, 0x7fff_ffff, 0xffff_ffff, 1 << 31, 1 << 32,
                                        1 << 40, 1 << 62, UInt64(Int.max), .max]

  mutating func mutate(_ original: [UInt8]) -> [UInt8] {
    var bytes = original
    guard !bytes.isEmpty else { return [UInt8.random(in: 0...255, using: &rng)] }
    switch Int.random(in: 0..<5, using: &rng) {
    case 0:  // flip 1–4 bits
      for _ in 0..<Int.random(in: 1...4, using: &rng) {
        bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= 1 << UInt8.random(in: 0...7, using: &rng)
      }
    case 1:  // truncate
      bytes.removeLast(Int.random(in: 1...bytes.count, using: &rng))
    case 2:  // insert 1–8 random bytes
      let insertion = (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
      bytes.insert(contentsOf: insertion, at: Int.random(in: 0...bytes.count, using: &rng))
    case 3:  // delete a range of 1–16 bytes
      let start = Int.random(in: 0..<bytes.count, using: &rng)
      bytes.removeSubrange(start..<min(bytes.count, start + Int.random(in: 1...16, using: &rng)))
    default:  // set a 1-, 2-, 4- or 8-byte little-endian field to a hostile value (or the input's size ± 1)
      let width = [1, 2, 4, 8].randomElement(using: &rng)!
      guard bytes.count >= width else { return bytes }
      let offset = Int.random(in: 0...(bytes.count - width), using: &rng)
      let sizes = [UInt64(bytes.count) - 1, UInt64(bytes.count), UInt64(bytes.count) + 1]
      let value = (Mutator.hostileValues + sizes).randomElement(using: &rng)!
      for i in 0..<width { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }
    return bytes
  }
}

/// A tensor's storage record as torch.save writes it: little-endian float32 or int64 elements.
private func storageBytes(_ tensor: StoredTensor) -> [UInt8] {
  tensor.dtype == .i64
    ? tensor.value.scalars.flatMap { withUnsafeBytes(of: Int64($0).littleEndian, Array.init) }
    : tensor.value.scalars.withUnsafeBytes(Array.init)
}

@Suite struct CheckpointFuzzTests {
  static let inputsPerFormat = 10_000
  /// No single decode of a few hundred bytes may take longer (a hang or an exponential walk would).
  static let decodeBound: Duration = .seconds(2)

  static let tensors: [(String, StoredTensor)] = [
    ("conv.weight", StoredTensor(Tensor(shape: [2, 3], scalars: [0.5, -1, 2, 3.25, -0, 1e-3]))),
    ("bn.running_var", StoredTensor(Tensor(shape: [4], scalars: [0, 0, 0, 0]))),
    ("bn.num_batches_tracked", StoredTensor(Tensor(shape: [], scalars: [7]), dtype: .i64)),
  ]

  /// A torch.save-like archive written by our writer's pickle, with the zeros of `bn.running_var` deflated so
  /// that mutations reach the inflate path too.
  static func validPth() -> [UInt8] {
    let pickle = PyTorchCheckpointWriter.pickled(tensors, metadata: ["epoch": "3"])
    var records: [HostileArchive.Record] = [.stored("archive/data.pkl", pickle),
                                            .stored("archive/byteorder", Array("little".utf8))]
    for (index, (_, tensor)) in tensors.enumerated() {
      let bytes = storageBytes(tensor)
      records.append(index == 1
                       ? .deflatedZeros("archive/data/1", zeroCount: bytes.count, declaredSize: UInt32(bytes.count))
                       : .stored("archive/data/\(index)", bytes))
    }
    return HostileArchive.zip(records + [.stored("archive/version", Array("3\n".utf8))])
  }

  @Test func theValidInputsDecode() throws {
    let pth = try PyTorchCheckpoint(decoding: Data(Self.validPth()), path: "valid.pth")
    #expect(pth.tensors["meta.epoch"] == nil && pth.values["meta.epoch"] == "3")
    for (name, tensor) in Self.tensors { #expect(pth.tensors["state_dict." + name] == tensor) }
    let safetensors = SafeTensors(tensors: Dictionary(uniqueKeysWithValues: Self.tensors), metadata: ["a": "b"])
    #expect(try SafeTensors(decoding: safetensors.encoded(), path: "valid.safetensors") == safetensors)
  }

  /// Whole-file mutations of the .pth (zip structure, directory sizes, local headers, deflate stream, pickle).
  @Test func mutatedPthFilesDecodeOrThrowTypedErrors() {
    let original = Self.validPth()
    var mutator = Mutator(rng: SplitMix64(seed: 0x5eed_0014))
    var outcomes = FuzzOutcomes()
    for trial in 0..<Self.inputsPerFormat {
      let bytes = mutator.mutate(original)
      outcomes.run("trial \(trial)") { _ = try PyTorchCheckpoint(decoding: Data(bytes), path: "fuzz.pth") }
    }
    check(outcomes)
  }

  /// Mutations of data.pkl only, inside a valid archive (correct sizes and CRC-32), so they reach the unpickler
  /// and the tensor views rather than stopping at the zip checks.
  @Test func mutatedPicklesDecodeOrThrowTypedErrors() {
    let pickle = PyTorchCheckpointWriter.pickled(Self.tensors, metadata: ["epoch": "3"])
    let storages = Self.tensors.enumerated().map { ("\($0.offset)", storageBytes($0.element.1)) }
    var mutator = Mutator(rng: SplitMix64(seed: 0x5eed_0015))
    var outcomes = FuzzOutcomes()
    for trial in 0..<Self.inputsPerFormat {
      let archive = HostileArchive.torchArchive(pickle: mutator.mutate(pickle), storages: storages)
      outcomes.run("trial \(trial)") { _ = try PyTorchCheckpoint(decoding: Data(archive), path: "fuzz.pth") }
    }
    check(outcomes)
  }

  /// Whole-file mutations of a .safetensors, and mutations of its JSON header with the length prefix fixed up.
  @Test func mutatedSafetensorsDecodeOrThrowTypedErrors() {
    let file = SafeTensors(tensors: Dictionary(uniqueKeysWithValues: Self.tensors), metadata: ["a": "b"]).encoded()
    let original = [UInt8](file)
    let headerLength = Int(original[0]) | Int(original[1]) << 8
    let json = Array(original[8..<(8 + headerLength)]), data = Array(original[(8 + headerLength)...])
    var mutator = Mutator(rng: SplitMix64(seed: 0x5eed_0016))
    var outcomes = FuzzOutcomes()
    for trial in 0..<Self.inputsPerFormat {
      let bytes: [UInt8]
      if trial % 2 == 0 {
        bytes = mutator.mutate(original)
      } else {
        let header = mutateNumbers(in: json, using: &mutator.rng)
        bytes = HostileArchive.le32(UInt32(header.count)) + [0, 0, 0, 0] + header + data
      }
      outcomes.run("trial \(trial)") { _ = try SafeTensors(decoding: Data(bytes), path: "fuzz.safetensors") }
    }
    check(outcomes)
  }

  /// Replaces one number of the JSON text (a shape or an offset) by a hostile one, or mutates the text.
  private func mutateNumbers(in json: [UInt8], using rng: inout SplitMix64) -> [UInt8] {
    let digits = json.indices.filter { json[$0] >= UInt8(ascii: "0") && json[$0] <= UInt8(ascii: "9") }
    guard let start = digits.randomElement(using: &rng), Bool.random(using: &rng) else {
      var mutator = Mutator(rng: rng)
      defer { rng = mutator.rng }
      return mutator.mutate(json)
    }
    var end = start
    while end < json.count, json[end] >= UInt8(ascii: "0"), json[end] <= UInt8(ascii: "9") { end += 1 }
    let replacement = ["-1", "0", "4611686018427387904", "9223372036854775807", "18446744073709551616",
                       "2147483648", "1e300"].randomElement(using: &rng)!
    return Array(json[..<start]) + Array(replacement.utf8) + Array(json[end...])
  }

  private func check(_ outcomes: FuzzOutcomes, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(outcomes.decoded + outcomes.refused == Self.inputsPerFormat, "\(outcomes.wrongErrors)",
            sourceLocation: sourceLocation)
    #expect(outcomes.slowest < Self.decodeBound, "slowest decode \(outcomes.slowest)", sourceLocation: sourceLocation)
    #expect(outcomes.refused > Self.inputsPerFormat / 2, "most mutations must be noticed",
            sourceLocation: sourceLocation)
  }
}
