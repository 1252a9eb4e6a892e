// PNG decoding against PIL's pixels (scripts/reference/make_codec_fixtures.py), palette indices, encoding.
import Foundation
import Testing
import Datasets
import Tensors

@Suite struct PNGTests {
  static let pngExpectations = CodecFixtures.expectations.filter { $0.file.hasSuffix(".png") }

  /// Gray, RGB, RGBA, LA, 1-bit, palettes (256-colour VOC mask, 4-bit, tRNS, indices beyond the palette), 16-bit
  /// RGB/gray/RGBA, a gAMA chunk and Adam7 interlacing, each decoded as PIL decodes it. Only 16-bit RGBA has a
  /// tolerance (1), set by the reference script: see `decodePNG`.
  @Test(arguments: pngExpectations)
  func decodesToPILPixels(_ expectation: CodecFixtures.Expectation) throws {
    let decoded = try decodePNG(try CodecFixtures.bytes(expectation.file), mode: expectation.colorMode)
    expectPixels(decoded, try CodecFixtures.expectedImage(expectation), tolerance: expectation.tolerance,
                 expectation.description)
  }

  @Test func vocMaskGivesClassIndicesNotColours() throws {
    let mask = try decodePNGIndices(try CodecFixtures.bytes("voc_mask_17x13.png"))
    #expect(mask.channels == 1 && mask.width == 17 && mask.height == 13)
    #expect(mask[0, 0, 0] == 255 && mask[5, 4, 0] == 15 && mask[12, 8, 0] == 7 && mask[2, 11, 0] == 20)
    #expect(mask[16, 12, 0] == 0)
    #expect(Set(mask.pixels) == [0, 7, 15, 20, 255])
  }

  /// The VOC devkit's colour map, checked against the class colours VOC's documentation lists.
  @Test func vocColorMapMatchesTheDevkit() {
    let map = vocColorMap()
    func color(_ label: Int) -> [UInt8] { Array(map[3 * label..<3 * label + 3]) }
    #expect(map.count == 768)
    #expect(color(0) == [0, 0, 0])          // background
    #expect(color(1) == [128, 0, 0])        // aeroplane
    #expect(color(7) == [128, 128, 128])    // car
    #expect(color(15) == [192, 128, 128])   // person
    #expect(color(20) == [0, 64, 128])      // tvmonitor
    #expect(color(255) == [224, 224, 192])  // void / ignore border
    #expect(vocColorMap(count: 21) == Array(map.prefix(63)))
  }

  @Test func headerGivesDimensionsAndPalette() throws {
    let mask = try pngHeader(try CodecFixtures.bytes("voc_mask_17x13.png"))
    #expect(mask == ImageHeader(format: .png, width: 17, height: 13, channels: 3, hasPalette: true))
    let gray = try pngHeader(try CodecFixtures.bytes("gray16_8x3.png"))
    #expect(gray == ImageHeader(format: .png, width: 8, height: 3, channels: 1, hasPalette: false))
  }

  @Test func indicesAreRefusedForRGBAnd16BitPNGs() throws {
    for file in ["coffee_20x15_rgb.png", "coffee_20x15_rgba.png", "gray16_8x3.png"] {
      #expect(throws: ImageIOError.self, "\(file)") { try decodePNGIndices(try CodecFixtures.bytes(file)) }
    }
  }

  @Test func grayAndRGBRoundTripExactly() throws {
    var rng = SplitMix64(seed: 3)
    for channels in [1, 3] {
      let image = Image(width: 13, height: 7, channels: channels,
                        pixels: (0..<13 * 7 * channels).map { _ in UInt8.random(in: 0...255, using: &rng) })
      let decoded = try decodePNG(try encodePNG(image))
      #expect(decoded == image, "\(channels) channels")
    }
  }

  @Test func palettePNGRoundTripsIndicesAndColours() throws {
    let labels: [UInt8] = [0, 1, 2, 15, 20, 255]
    let mask = Image(width: 9, height: 5, channels: 1, pixels: (0..<45).map { labels[$0 * 7 % labels.count] })
    let bytes = try encodePalettePNG(mask)
    #expect(try pngHeader(bytes).hasPalette)
    #expect(try decodePNGIndices(bytes) == mask)
    let colours = try decodePNG(bytes, mode: .rgb)
    let map = vocColorMap()
    for i in 0..<45 {
      let label = Int(mask.pixels[i])
      #expect(Array(colours.pixels[3 * i..<3 * i + 3]) == Array(map[3 * label..<3 * label + 3]))
    }
    // A short palette gives a smaller PNG with the same indices.
    let small = Image(width: 4, height: 2, channels: 1, pixels: [0, 1, 2, 3, 3, 2, 1, 0])
    #expect(try decodePNGIndices(try encodePalettePNG(small, palette: vocColorMap(count: 4))) == small)
  }

  @Test func gammaChunkIsIgnoredAsPILIgnoresIt() throws {
    let plain = try decodePNG(try CodecFixtures.bytes("camera_20x15_gray.png"))
    let withGamma = try decodePNG(try CodecFixtures.bytes("gray_gamma1_20x15.png"))
    #expect(plain == withGamma)
  }

  /// An IHDR declaring 100000×100000 pixels (with a valid CRC) is refused before anything is allocated.
  @Test func hugeDeclaredSizeIsRefused() throws {
    var ihdr = Array("IHDR".utf8)
    ihdr += [0x00, 0x01, 0x86, 0xA0, 0x00, 0x01, 0x86, 0xA0, 8, 2, 0, 0, 0]  // 100000 × 100000, 8-bit RGB
    let bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + ihdr + bigEndian(crc32(ihdr))
    #expect {
      try decodePNG(bytes + [0, 0, 0, 0] + Array("IDAT".utf8) + bigEndian(crc32(Array("IDAT".utf8))))
    } throws: { error in
      if case .tooLarge(_, 100000, 100000, _)? = error as? ImageIOError { return true }
      return false
    }
  }
}

/// The CRC-32 of PNG chunks (ISO 3309, reflected polynomial 0xEDB88320), bit by bit.
func crc32(_ bytes: [UInt8]) -> UInt32 {
  var crc: UInt32 = 0xFFFF_FFFF
  for byte in bytes {
    crc ^= UInt32(byte)
    for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
  }
  return ~crc
}

func bigEndian(_ value: UInt32) -> [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: value >> $0) } }
