// Regression tests for what the fuzz tests (FuzzImageCodecTests, FuzzVOCTests) found, one per finding, each
// reduced to the input that showed it.
import Foundation
import Testing
import Datasets
import TestSupport

@Suite struct FuzzFindingsTests {
  /// A JPEG's frame header set to `height`×`width` (big-endian, at the SOF0/SOF2 segment).
  static func jpeg(_ file: String, height: Int, width: Int) throws -> [UInt8] {
    var bytes = try CodecFixtures.bytes(file)
    var i = 2
    while bytes[i + 1] != 0xC0 && bytes[i + 1] != 0xC2 { i += 2 + (Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])) }
    bytes[i + 5] = UInt8(height >> 8); bytes[i + 6] = UInt8(height & 0xff)
    bytes[i + 7] = UInt8(width >> 8); bytes[i + 8] = UInt8(width & 0xff)
    return bytes
  }

  /// Found by mutatedJPEGsDecodeOrThrowTypedErrors (trial 5915): a 1,111-byte CMYK JPEG whose frame header says
  /// 13377×8192 (under the pixel cap) decoded "successfully" — libjpeg invents the missing 99.9 % as gray after a
  /// corrupt-data warning — allocating 770 MB and taking over 20 s in a debug build. Huffman-coded scan data holds
  /// at least one bit per 8×8 block, so such a header is refused from the file size before anything is allocated.
  @Test func aJPEGDeclaringFarMorePixelsThanItsDataCanHoldIsRefused() throws {
    for (file, height, width) in [("astronaut_24x16_cmyk.jpg", 13_377, 8_192), ("camera_64x64_gray.jpg", 4_000, 4_000),
                                  ("chelsea_64x48_q95_444_progressive.jpg", 9_000, 9_000)] {
      let bytes = try Self.jpeg(file, height: height, width: width)
      let expected = ImageIOError.implausibleSize(path: file, width: width, height: height, dataBytes: bytes.count)
      #expect(throws: expected) { _ = try ImageHeader(decoding: bytes, source: file) }
      // Discarding the result keeps a failure's message short (it would print every pixel).
      let start = ContinuousClock.now
      #expect(throws: expected) { _ = try Image(decoding: bytes, source: file) }
      #expect(ContinuousClock.now - start < .seconds(1))
      #expect("\(expected)".contains(file) && "\(expected)".contains("\(width)×\(height)"))
    }
  }

  /// The bound leaves room for real JPEGs: a uniform 1024×1024 image (the most compressible content, about 60
  /// pixels per byte at quality 10, an eighth of the bound) decodes, gray and colour.
  @Test func aHighlyCompressibleJPEGIsStillDecoded() throws {
    for channels in [1, 3] {
      let flat = Image(width: 1024, height: 1024, channels: channels,
                       pixels: [UInt8](repeating: 0, count: 1024 * 1024 * channels))
      let bytes = try encodeJPEG(flat, quality: 10)
      #expect(bytes.count * 32 < 1024 * 1024, "the test needs a very compressed file, got \(bytes.count) bytes")
      #expect(try Image(decoding: bytes, source: "flat.jpg").width == 1024)
    }
  }
}

@Suite struct FuzzVOCFindingsTests {
  /// Found by mutatedAnnotationsParseOrThrowTypedErrors (trial 901): `<filena<?x?>me>` crashed the test process
  /// (signal 11, strlen of a null pointer): swift-corelibs-foundation's XMLParser hands libxml2's null data of an
  /// empty processing instruction to a non-optional pointer. Processing instructions are refused before parsing.
  @Test func aProcessingInstructionIsRefusedNotACrash() throws {
    for xml in ["<annotation><?x?><filename>a.jpg</filename></annotation>",
                "<?xml version=\"1.0\"?>\n<annotation>\n<?x?></annotation>",
                "<annotation><?pi some data?></annotation>"] {
      #expect {
        try VOCAnnotation(xml: Data(xml.utf8), path: "Annotations/pi.xml")
      } throws: { error in
        guard case let .malformedXML(path, reason)? = error as? DatasetError else { return false }
        return path == "Annotations/pi.xml" && reason.contains("processing instruction")
      }
    }
  }

  /// The XML declaration is not a processing instruction: a file starting with one (and a byte-order mark) parses.
  @Test func theXMLDeclarationIsStillAccepted() throws {
    let body = "<annotation><filename>a.jpg</filename><size><width>4</width><height>3</height></size></annotation>"
    for prefix in ["", "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n", "\u{FEFF}<?xml version=\"1.0\"?>"] {
      #expect(try VOCAnnotation(xml: Data((prefix + body).utf8), path: "a.xml").width == 4)
    }
  }
}

@Suite struct FuzzListFindingsTests {
  /// Found by mutatedListFilesReadOrThrowTypedErrors (trial 569, list/places.csv): a label of
  /// 9223372036854775807 was accepted, and `classCount` (largest label + 1) trapped on overflow; a label of
  /// 10^12 would have made `data check` allocate a per-class table of 8 TB. Labels are bounded at the reader.
  @Test func aHugeLabelIsRefusedNamingTheLine() throws {
    let folder = try ReaderFixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(at: folder) }
    for label in ["9223372036854775807", "1000000000000", "100000"] {
      let list = folder.appendingPathComponent("places.csv")
      try Data("path,label\na/b.png,\(label)\nc/d.jpg,7\n".utf8).write(to: list)
      #expect {
        try ImageListDataset(listFile: list, root: folder)
      } throws: { error in
        guard case let .malformedLine(path, line, _, expected)? = error as? DatasetError else { return false }
        return path == list.path && line == 2 && expected.contains("below 100000")
      }
    }
  }
}
