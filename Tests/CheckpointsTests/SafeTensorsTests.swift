import Foundation
import Testing
import Tensors
import Checkpoints

/// A fresh temporary file URL that is removed when `body` returns.
func withTemporaryFile<T>(_ name: String = "checkpoint.safetensors", _ body: (URL) throws -> T) throws -> T {
  let folder = FileManager.default.temporaryDirectory.appendingPathComponent("simsiam-tests-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(at: folder) }
  return try body(folder.appendingPathComponent(name))
}

/// The bytes of a safetensors file with header `json` (padded to 8 bytes) and `data`.
func safetensorsBytes(json: String, data: [UInt8]) -> Data {
  var header = Array(json.utf8)
  header += [UInt8](repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8)
  var bytes = Data()
  withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes.append(contentsOf: $0) }
  bytes.append(contentsOf: header)
  bytes.append(contentsOf: data)
  return bytes
}

@Suite struct SafeTensorsTests {
  /// Known bytes: F32 [1, −2] is 00 00 80 3F, 00 00 00 C0 (IEEE 754 little-endian); I64 7 is 07 00 … 00.
  static let handBuiltJSON = #"{"__metadata__":{"format":"pt"},"#
    + #""a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},"n":{"data_offsets":[8,16],"dtype":"I64","shape":[]}}"#
  static let handBuiltData: [UInt8] = [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0,
                                       0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]

  @Test func decodesHandBuiltFile() throws {
    let file = try SafeTensors(decoding: safetensorsBytes(json: Self.handBuiltJSON, data: Self.handBuiltData),
                               path: "hand.safetensors")
    #expect(file.tensors["a"] == StoredTensor(Tensor(shape: [2], scalars: [1, -2])))
    #expect(file.tensors["n"] == StoredTensor(Tensor(shape: [], scalars: [7]), dtype: .i64))
    #expect(file.metadata == ["format": "pt"])
  }

  @Test func encodesTheSameBytes() {
    // Header keys sorted, 8-byte padding, data in name order: byte-for-byte the hand-built file.
    let file = SafeTensors(tensors: ["n": StoredTensor(Tensor(shape: [], scalars: [7]), dtype: .i64),
                                     "a": StoredTensor(Tensor(shape: [2], scalars: [1, -2]))],
                           metadata: ["format": "pt"])
    let encoded = file.encoded()
    #expect(encoded == safetensorsBytes(json: Self.handBuiltJSON, data: Self.handBuiltData))
    #expect(encoded.count % 8 == 0)
  }

  @Test func decodesFileWrittenByReferenceLibrary() throws {
    // Written by huggingface safetensors 0.8.0 (Python), whose reader also accepts `encodesTheSameBytes`' output:
    //   from safetensors.numpy import save
    //   save({"w": np.array([[1.5, -2], [0.25, 3]], np.float32), "n": np.array(5, np.int64)},
    //        metadata={"format": "pt"})
    let base64 = "kAAAAAAAAAB7Il9fbWV0YWRhdGFfXyI6eyJmb3JtYXQiOiJwdCJ9LCJuIjp7ImR0eXBlIjoiSTY0Iiwic2hhcGUiOltdLCJk"
      + "YXRhX29mZnNldHMiOlswLDhdfSwidyI6eyJkdHlwZSI6IkYzMiIsInNoYXBlIjpbMiwyXSwiZGF0YV9vZmZzZXRzIjpbOCwyNF19fSAg"
      + "ICAFAAAAAAAAAAAAwD8AAADAAACAPgAAQEA="
    let file = try SafeTensors(decoding: try #require(Data(base64Encoded: base64)), path: "reference.safetensors")
    #expect(file.tensors["w"] == StoredTensor(Tensor(shape: [2, 2], scalars: [1.5, -2, 0.25, 3])))
    #expect(file.tensors["n"] == StoredTensor(Tensor(shape: [], scalars: [5]), dtype: .i64))
    #expect(file.metadata == ["format": "pt"])
  }

  @Test func roundTripsThroughAFile() throws {
    var rng = SplitMix64(seed: 5)
    let original = SafeTensors(
      tensors: [
        "conv1.weight": StoredTensor(Tensor.randomNormal([4, 3, 3, 3], using: &rng)),
        "bn1.num_batches_tracked": StoredTensor(Tensor(shape: [], scalars: [123_456]), dtype: .i64),
        "fc.bias": StoredTensor(Tensor(shape: [3], scalars: [0, -0.5, .greatestFiniteMagnitude])),
        "empty": StoredTensor(Tensor.zeros([0, 4])),
      ],
      metadata: ["epoch": "3", "config": #"{"lr": 0.05, "path": "a/b"}"#, "unicode": "ε ≈ 1e-5"])
    try withTemporaryFile { url in
      try original.write(to: url)
      #expect(try SafeTensors(contentsOf: url) == original)
      let header = try SafeTensors.readHeader(of: url)
      #expect(header.entries.map(\.name) == ["bn1.num_batches_tracked", "conv1.weight", "empty", "fc.bias"])
      #expect(header.metadata == original.metadata)
    }
  }

  @Test func corruptHeadersThrowTypedErrors() {
    func decodeError(_ json: String, _ data: [UInt8] = []) -> CheckpointError? {
      do {
        _ = try SafeTensors(decoding: safetensorsBytes(json: json, data: data), path: "bad.safetensors")
        return nil
      } catch {
        return error as? CheckpointError
      }
    }
    func isCorrupt(_ error: CheckpointError?) -> Bool {
      if case .corruptHeader(path: "bad.safetensors", _) = error { true } else { false }
    }
    #expect(isCorrupt(decodeError("not json at all")))
    #expect(isCorrupt(decodeError(#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]"#, [0, 0, 0, 0])))
    #expect(isCorrupt(decodeError(#"{"a": {"dtype": "F32", "shape": "two", "data_offsets": [0, 4]}}"#, [0, 0, 0, 0])))
    #expect(isCorrupt(decodeError(#"{"a": {"dtype": "F32", "data_offsets": [0, 4]}}"#, [0, 0, 0, 0])))
    #expect(isCorrupt(decodeError(#"{"a": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 4]}}"#, [0, 0, 0, 0])))
    #expect(isCorrupt(decodeError(#"{"__metadata__": {"epoch": 3}}"#)))
    #expect(isCorrupt(decodeError(#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, [0, 0, 0, 0, 9])))
    // Offsets that disagree with the shape, or overlap.
    #expect(decodeError(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}"#, [0, 0, 0, 0])
              == .invalidTensor(path: "bad.safetensors", name: "a", reason: "spans 4 bytes, but F32 [2] needs 8"))
    if case .invalidTensor(_, "b", _) = decodeError(
      #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}}"#,
      [0, 0, 0, 0, 0, 0]) {} else { Issue.record("overlapping tensors were accepted") }

    // A length field larger than the reference reader allows.
    var huge = Data()
    withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { huge.append(contentsOf: $0) }
    do {
      _ = try SafeTensors(decoding: huge, path: "bad.safetensors")
      Issue.record("a 1 TB header length was accepted")
    } catch let error as CheckpointError {
      #expect(isCorrupt(error))
      #expect(error.description.contains("bad.safetensors") && error.description.contains("header length"))
    } catch {
      Issue.record("untyped error \(error)")
    }
  }

  @Test func truncatedFilesThrowTypedErrors() throws {
    let whole = safetensorsBytes(json: Self.handBuiltJSON, data: Self.handBuiltData)
    #expect(throws: CheckpointError.truncated(path: "t", expectedBytes: whole.count, actualBytes: whole.count - 3)) {
      try SafeTensors(decoding: whole.prefix(whole.count - 3), path: "t")
    }
    #expect(throws: CheckpointError.truncated(path: "t", expectedBytes: 8, actualBytes: 5)) {
      try SafeTensors(decoding: whole.prefix(5), path: "t")
    }
    // Cut inside the header: the header alone needs 8 + N bytes.
    #expect(throws: CheckpointError.truncated(path: "t", expectedBytes: whole.count - 16, actualBytes: 20)) {
      try SafeTensors(decoding: whole.prefix(20), path: "t")
    }
    // The same from disk, through the header-only reader and the full reader.
    try withTemporaryFile { url in
      try whole.prefix(whole.count - 1).write(to: url)
      let expected = CheckpointError.truncated(path: url.path, expectedBytes: whole.count, actualBytes: whole.count - 1)
      #expect(throws: expected) { try SafeTensors.readHeader(of: url) }
      #expect(throws: expected) { try SafeTensors(contentsOf: url) }
      #expect(expected.description.contains(url.path) && expected.description.contains("interrupted"))
    }
  }

  @Test func unsupportedDTypeIsReportedButHeaderReads() throws {
    let bytes = safetensorsBytes(json: #"{"h": {"dtype": "I16", "shape": [2], "data_offsets": [0, 4]}}"#,
                                 data: [0, 0x3C, 0, 0x40])
    #expect(throws: CheckpointError.unsupportedDType(path: "short", name: "h", dtype: "I16")) {
      try SafeTensors(decoding: bytes, path: "short")
    }
    try withTemporaryFile { url in
      try bytes.write(to: url)
      let header = try SafeTensors.readHeader(of: url)
      #expect(header.entries == [SafeTensorsEntry(name: "h", dtype: .i16, shape: [2], dataOffsets: 0..<4)])
    }
  }

  @Test func halfBFloat16AndDoubleBecomeF32() throws {
    // F16 3C00 = 1, C000 = −2, 0001 = 2^−24 (smallest subnormal), 7C00 = +inf; BF16 3FC0 = 1.5, C120 = −10;
    // F64 0.1 rounds to the nearest Float like torch's tensor.float(). All little-endian.
    let json = #"{"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"#
      + #""d":{"dtype":"F64","shape":[1],"data_offsets":[4,12]},"#
      + #""h":{"dtype":"F16","shape":[2,2],"data_offsets":[12,20]}}"#
    var data: [UInt8] = [0xC0, 0x3F, 0x20, 0xC1]
    withUnsafeBytes(of: (0.1 as Double).bitPattern.littleEndian) { data += $0 }
    data += [0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0x00, 0x7C]
    let file = try SafeTensors(decoding: safetensorsBytes(json: json, data: data), path: "mixed")
    #expect(file.tensors["b"] == StoredTensor(Tensor(shape: [2], scalars: [1.5, -10])))
    #expect(file.tensors["d"] == StoredTensor(Tensor(shape: [1], scalars: [Float(0.1 as Double)])))
    #expect(file.tensors["h"] == StoredTensor(Tensor(shape: [2, 2], scalars: [1, -2, 0x1p-24, .infinity])))
  }

  @Test func missingFileIsUnreadable() {
    let url = URL(fileURLWithPath: "/nonexistent/simsiam/model.safetensors")
    #expect {
      try SafeTensors(contentsOf: url)
    } throws: { error in
      guard case .unreadableFile(path: url.path, _) = error as? CheckpointError else { return false }
      return true
    }
  }
}
