// The detectron2 backbone pickle (Detectron2Converter) against MMSelfSup's convert-pretrain-to-detectron2.py
// re-run by scripts/reference/make_detectron2_fixtures.py: listing.json is the reference conversion of the
// committed MMSelfSup model-zoo backbone (names, dtypes, shapes, SHA-256 of the bytes); mmselfsup_zoo_backbone.pkl
// is a pickle this converter wrote that the script loaded with Python's pickle (encoding='latin1', as detectron2)
// and found identical to the reference conversion, array by array.
import Foundation
import Support
import Testing
import Tensors
@testable import Checkpoints

struct Detectron2Listing: Decodable {
  struct Array: Decodable {
    var name: String
    var dtype: String
    var shape: [Int]
    var sha256: String
  }
  var __author__: String
  var matching_heuristics: Bool
  var model: [Array]
}

func detectron2Fixture(_ name: String) throws -> URL {
  let folder = try #require(Bundle.module.url(forResource: "detectron2", withExtension: nil, subdirectory: "Fixtures"))
  return folder.appendingPathComponent(name)
}

@Suite struct Detectron2ConverterTests {
  /// The MMSelfSup model-zoo backbone fixture through our .pth reader and layout mapping.
  static func zooBackbone() throws -> [String: StoredTensor] {
    let url = try pthFixture("mmselfsup_zoo_backbone.pth")
    let file = try PyTorchCheckpoint(decoding: try Data(contentsOf: url), path: url.path)
    let contents = CheckpointContents(tensors: file.tensors, values: file.values, format: .pytorch, source: url.path)
    return try MappedCheckpoint(contents).backboneTensors
  }

  @Test func renamingRulesByHand() {
    let cases = [
      ("conv1.weight", "stem.conv1.weight"),
      ("bn1.running_var", "stem.conv1.norm.running_var"),
      ("fc.weight", "stem.fc.weight"),  // no "layer": the reference prefixes it too (detectron2 then ignores it)
      ("layer1.0.conv3.weight", "res2.0.conv3.weight"),
      ("layer2.3.bn2.bias", "res3.3.conv2.norm.bias"),
      ("layer3.0.downsample.0.weight", "res4.0.shortcut.weight"),
      ("layer4.0.downsample.1.num_batches_tracked", "res5.0.shortcut.norm.num_batches_tracked"),
      ("layer4.1.bn3.weight", "res5.1.conv3.norm.weight"),
    ]
    for (torchvision, detectron2) in cases {
      #expect(Detectron2Converter.detectron2Name(torchvision) == detectron2)
    }
  }

  @Test func conversionMatchesTheReferenceListing() throws {
    let listing = try JSONDecoder().decode(Detectron2Listing.self,
                                           from: Data(contentsOf: try detectron2Fixture("listing.json")))
    #expect(listing.__author__ == Detectron2Converter.author && listing.matching_heuristics)
    let renamed = try Detectron2Converter.renamed(try Self.zooBackbone(), source: "zoo")
    #expect(renamed.count == listing.model.count)
    #expect(renamed.map(\.name) == listing.model.map(\.name))
    for (ours, reference) in zip(renamed, listing.model) {
      #expect((ours.tensor.dtype == .i64 ? "<i8" : "<f4") == reference.dtype, "\(ours.name)")
      #expect(ours.tensor.value.shape == reference.shape, "\(ours.name)")
      #expect(SHA256.hexDigest(of: Detectron2Converter.littleEndianBytes(ours.tensor)) == reference.sha256,
              "\(ours.name)")
    }
  }

  /// The pickle's bytes equal the ones Python loaded into exactly the reference conversion.
  @Test func pickleEqualsTheVerifiedGolden() throws {
    let bytes = Detectron2Converter.pickle(try Detectron2Converter.renamed(try Self.zooBackbone(), source: "zoo"))
    if let folder = ProcessInfo.processInfo.environment["SIMSIAM_D2_VERIFY_DIR"] {
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      try Data(bytes).write(to: URL(fileURLWithPath: folder).appendingPathComponent("mmselfsup_zoo_backbone.pkl"))
    }
    let golden = try [UInt8](Data(contentsOf: try detectron2Fixture("mmselfsup_zoo_backbone.pkl")))
    #expect(bytes.count == golden.count)
    #expect(bytes == golden)
  }

  /// The pickle of one small array, opcode by opcode (CPython's pickletools names): what numpy's
  /// `ndarray.__reduce__` produces, without the memo.
  @Test func onePickledArrayByHand() {
    let tensor = StoredTensor(Tensor(shape: [2], scalars: [1, -2]))
    let bytes = Detectron2Converter.pickle([("x", tensor)], author: "A")
    func unicode(_ text: String) -> [UInt8] { [0x58, UInt8(text.utf8.count), 0, 0, 0] + Array(text.utf8) }
    func global(_ module: String, _ name: String) -> [UInt8] {
      [0x63] + Array(module.utf8) + [0x0a] + Array(name.utf8) + [0x0a]
    }
    var expected: [UInt8] = [0x80, 3, 0x7d, 0x28] + unicode("model") + [0x7d, 0x28] + unicode("x")
    expected += global("numpy.core.multiarray", "_reconstruct") + [0x28] + global("numpy", "ndarray")
    expected += [0x28, 0x4b, 0, 0x74] + [0x42, 1, 0, 0, 0, 0x62] + [0x74, 0x52]  // (0,), b'b', TUPLE, REDUCE
    expected += [0x28, 0x4b, 1, 0x28, 0x4b, 2, 0x74] + global("numpy", "dtype")  // (1, (2,), dtype(…
    expected += [0x28] + unicode("f4") + [0x89, 0x88, 0x74, 0x52]  // ('f4', False, True) REDUCE
    expected += [0x28, 0x4b, 3] + unicode("<") + [0x4e, 0x4e, 0x4e]  // (3, '<', None, None, None,
    expected += [0x4a, 0xff, 0xff, 0xff, 0xff, 0x4a, 0xff, 0xff, 0xff, 0xff, 0x4b, 0, 0x74, 0x62]  // -1, -1, 0) BUILD
    expected += [0x89, 0x42, 8, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]  // False, b'<1.0, -2.0 as f4>'
    expected += [0x74, 0x62, 0x75]  // TUPLE BUILD, SETITEMS (model)
    expected += unicode("__author__") + unicode("A") + unicode("matching_heuristics") + [0x88, 0x75, 0x2e]
    #expect(bytes == expected)
  }

  @Test func int64CountersKeepTheirDType() {
    let counter = StoredTensor(Tensor(shape: [], scalars: [16_777_216]), dtype: .i64)
    #expect(Detectron2Converter.littleEndianBytes(counter) == [0, 0, 0, 1, 0, 0, 0, 0])
  }

  @Test func collidingNamesAreRefusedNamingThem() {
    let tensor = StoredTensor(Tensor(shape: [1], scalars: [0]))
    #expect(throws: Detectron2ConversionError.nameCollision(path: "in.pth", names: ["bn1.weight", "conv1.norm.weight"],
                                                            target: "stem.conv1.norm.weight")) {
      _ = try Detectron2Converter.renamed(["bn1.weight": tensor, "conv1.norm.weight": tensor], source: "in.pth")
    }
  }
}
