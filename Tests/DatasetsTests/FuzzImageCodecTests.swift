// Seeded, time-bounded fuzzing of the JPEG (libjpeg-turbo) and PNG (libpng) decoders (issue 14 "Done when"):
// 10,000 mutated inputs per format from small valid seeds (committed fixtures and our own encoders' output), half
// of them mutated blindly and half along the format's structure (JPEG marker segments and entropy-coded data; PNG
// chunks with their CRC-32 fixed up, so that mutations get past the CRC check into IHDR, PLTE, tRNS and zlib).
// Every input must decode to a consistent image or throw an `ImageIOError` naming the input, each within a time
// bound; a crash kills the run. Dimensions set to 65535×65535 are refused by the pixel cap before any allocation.
import Foundation
import Testing
import Datasets
import Tensors
import TestSupport

/// CRC-32 (ISO-HDLC, PNG's chunk check), table-driven.
private let crcTable: [UInt32] = (0..<256).map { n in
  var c = UInt32(n)
  for _ in 0..<8 { c = c & 1 != 0 ? 0xedb8_8320 ^ (c >> 1) : c >> 1 }
  return c
}

private func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
  ~bytes.reduce(0xffff_ffff as UInt32) { crcTable[Int(($0 ^ UInt32($1)) & 0xff)] ^ ($0 >> 8) }
}

private func bigEndian32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }

/// A PNG as its chunks (type and data); `encoded` writes the signature, lengths and correct CRCs.
private struct PNGChunks {
  var chunks: [(type: [UInt8], data: [UInt8])]

  /// Nil when `bytes` is not a well-formed chunk sequence.
  init?(_ bytes: [UInt8]) {
    var offset = 8
    chunks = []
    while offset + 12 <= bytes.count {
      let length = Int(bytes[offset..<offset + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
      guard offset + 12 + length <= bytes.count else { return nil }
      chunks.append((Array(bytes[offset + 4..<offset + 8]), Array(bytes[offset + 8..<offset + 8 + length])))
      offset += 12 + length
    }
    guard offset == bytes.count, !chunks.isEmpty else { return nil }
  }

  var encoded: [UInt8] {
    chunks.reduce([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { file, chunk in
      file + bigEndian32(UInt32(chunk.data.count)) + chunk.type + chunk.data + bigEndian32(crc32(chunk.type + chunk.data))
    }
  }
}

/// The offset of a JPEG's first SOFn segment's length field, or nil.
private func jpegFrameHeaderOffset(_ bytes: [UInt8]) -> Int? {
  var i = 2
  while i + 4 <= bytes.count, bytes[i] == 0xFF {
    let marker = bytes[i + 1]
    if (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker) { return i + 2 }
    if marker == 0xDA { return nil }
    i += 2 + (Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]))
  }
  return nil
}

/// Marker segments of a JPEG up to and including the first SOS header, and the rest (entropy-coded data, later
/// scans, EOI) as one piece.
private func jpegSegments(_ bytes: [UInt8]) -> (segments: [[UInt8]], rest: [UInt8])? {
  var segments: [[UInt8]] = []
  var i = 2
  while i + 4 <= bytes.count, bytes[i] == 0xFF {
    let marker = bytes[i + 1]
    let end = i + 2 + (Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]))
    guard end <= bytes.count else { return nil }
    segments.append(Array(bytes[i..<end]))
    i = end
    if marker == 0xDA { return (segments, Array(bytes[i...])) }
  }
  return nil
}

@Suite struct FuzzImageCodecTests {
  static let inputsPerFormat = 10_000

  static let jpegFixtures = ["astronaut_24x16_cmyk.jpg", "camera_64x64_gray.jpg",
                             "chelsea_64x48_q95_444_progressive.jpg", "hubble_61x47_q75_optimized_restart.jpg"]
  static let pngFixtures = ["coffee_20x15_rgb.png", "voc_mask_17x13.png", "coffee_20x15_adam7.png", "rgba16_6x5.png",
                            "palette_7x5_trns.png", "checker_9x7_1bit.png", "gray16_8x3.png", "camera_20x15_la.png",
                            "palette_11x6_4bit.png"]

  /// A small synthetic RGB image (a gradient with texture) for our encoders.
  static func syntheticImage(width: Int, height: Int, channels: Int) -> Image {
    var pixels: [UInt8] = []
    for y in 0..<height {
      for x in 0..<width {
        for c in 0..<channels { pixels.append(UInt8((x * 37 + y * 11 + c * 71 + (x ^ y) * 5) % 256)) }
      }
    }
    return Image(width: width, height: height, channels: channels, pixels: pixels)
  }

  static func jpegSeeds() throws -> [[UInt8]] {
    let fixtures = try jpegFixtures.map { try CodecFixtures.bytes($0) }
    return fixtures + [
      try encodeJPEG(syntheticImage(width: 16, height: 12, channels: 3), quality: 80),
      try encodeJPEG(syntheticImage(width: 9, height: 7, channels: 3), quality: 95, subsampling: .chroma422),
      try encodeJPEG(syntheticImage(width: 13, height: 5, channels: 1), quality: 50),
    ]
  }

  static func pngSeeds() throws -> [[UInt8]] {
    let fixtures = try pngFixtures.map { try CodecFixtures.bytes($0) }
    let indices = Image(width: 7, height: 4, channels: 1, pixels: (0..<28).map { UInt8([0, 1, 15, 255][$0 % 4]) })
    return fixtures + [
      try encodePNG(syntheticImage(width: 11, height: 6, channels: 3)),
      try encodePNG(syntheticImage(width: 5, height: 9, channels: 1)),
      try encodePalettePNG(indices),
    ]
  }

  /// Decodes in one of the three modes (by trial), checking a decoded image's size.
  static func decode(_ bytes: [UInt8], trial: Int, source: String) throws {
    let mode = [ImageColorMode.grayOrRGB, .rgb, .indices][trial % 3]
    if trial % 7 == 0 { _ = try ImageHeader(decoding: bytes, source: source) }
    let image = try Image(decoding: bytes, mode: mode, source: source)
    guard image.pixels.count == image.width * image.height * image.channels, image.width > 0, image.height > 0 else {
      throw InconsistentImage(width: image.width, height: image.height, channels: image.channels,
                              count: image.pixels.count)
    }
  }

  struct InconsistentImage: Error { var width, height, channels, count: Int }

  static func isClean(_ error: any Error, source: String) -> Bool {
    guard let error = error as? ImageIOError else { return false }
    return error.description.contains(source)
  }

  @Test func theSeedsDecode() throws {
    for (index, seed) in try (Self.jpegSeeds() + Self.pngSeeds()).enumerated() {
      try Self.decode(seed, trial: 0, source: "seed \(index)")
      #expect(PNGChunks(seed) != nil || jpegSegments(seed) != nil, "seed \(index) must parse structurally")
    }
  }

  @Test func mutatedJPEGsDecodeOrThrowTypedErrors() throws {
    let seeds = try Self.jpegSeeds()
    var mutator = FuzzMutator(seed: 0x5eed_1401)
    var outcomes = FuzzOutcomes()
    let watchdog = FuzzWatchdog("jpeg")
    defer { watchdog.stop() }
    for trial in 0..<Self.inputsPerFormat {
      let seed = seeds[trial % seeds.count]
      let bytes = trial % 2 == 0 ? mutator.mutateBytes(seed, donors: seeds) : Self.structuralJPEG(seed, &mutator)
      let source = "fuzz-\(trial).jpg"
      outcomes.run("trial \(trial)", input: bytes, watchdog: watchdog, isExpected: { Self.isClean($0, source: source) }) {
        try Self.decode(bytes, trial: trial, source: source)
      }
    }
    outcomes.check(inputs: Self.inputsPerFormat, minimumRefused: Self.inputsPerFormat / 2, "JPEG")
  }

  @Test func mutatedPNGsDecodeOrThrowTypedErrors() throws {
    let seeds = try Self.pngSeeds()
    var mutator = FuzzMutator(seed: 0x5eed_1402)
    var outcomes = FuzzOutcomes()
    let watchdog = FuzzWatchdog("png")
    defer { watchdog.stop() }
    for trial in 0..<Self.inputsPerFormat {
      let seed = seeds[trial % seeds.count]
      let bytes = trial % 2 == 0 ? mutator.mutateBytes(seed, donors: seeds) : Self.structuralPNG(seed, &mutator)
      let source = "fuzz-\(trial).png"
      outcomes.run("trial \(trial)", input: bytes, watchdog: watchdog, isExpected: { Self.isClean($0, source: source) }) {
        try Self.decode(bytes, trial: trial, source: source)
      }
    }
    // Structural PNG mutations keep valid CRCs, and many of them (ancillary chunks, unused palette entries) are
    // legitimately decodable: fewer refusals are expected than for blind mutations.
    outcomes.check(inputs: Self.inputsPerFormat, minimumRefused: Self.inputsPerFormat / 3, "PNG")
  }

  /// Sizes a frame header is set to: zero, one, PIL's limit's neighbourhood, 65535 (the field's largest).
  static let hostileDimensions: [UInt16] = [0, 1, 2, 255, 256, 4097, 8192, 13_377, 16_384, 32_768, 65_000, 65_535]

  /// A mutation along the JPEG's structure: frame-header fields (dimensions, components, sampling factors),
  /// a marker segment dropped, duplicated or mutated, or the entropy-coded data mutated.
  static func structuralJPEG(_ seed: [UInt8], _ mutator: inout FuzzMutator) -> [UInt8] {
    guard let (segments, rest) = jpegSegments(seed) else { return mutator.mutateBytes(seed) }
    var bytes = seed
    switch mutator.int(0..<6) {
    case 0, 1:  // dimensions (either, both) set to hostile values
      guard let sof = jpegFrameHeaderOffset(seed) else { return bytes }
      // Segment: length(2) precision(1) height(2) width(2) components(1) then 3 bytes per component.
      let which = mutator.int(0..<3)
      if which != 1 {
        mutator.writeInteger(UInt64(mutator.pick(hostileDimensions)), width: 2, bigEndian: true, at: sof + 3, in: &bytes)
      }
      if which != 0 {
        mutator.writeInteger(UInt64(mutator.pick(hostileDimensions)), width: 2, bigEndian: true, at: sof + 5, in: &bytes)
      }
    case 2:  // a frame-header byte (precision, component count, ids, sampling factors, table ids) set at random
      guard let sof = jpegFrameHeaderOffset(seed) else { return bytes }
      let length = Int(seed[sof]) << 8 | Int(seed[sof + 1])
      let offset = sof + 2 + mutator.int(0..<max(1, length - 2))
      if offset < bytes.count { bytes[offset] = mutator.pick([0, 1, 2, 3, 4, 5, 8, 12, 16, 0x11, 0x22, 0x44, 0xff]) }
    case 3:  // a marker segment dropped or duplicated
      var copy = segments
      let index = mutator.int(0..<copy.count)
      if mutator.chance(0.5) { copy.remove(at: index) } else { copy.insert(copy[index], at: mutator.int(0...copy.count)) }
      bytes = [0xFF, 0xD8] + copy.flatMap { $0 } + rest
    case 4:  // a marker segment's contents mutated (tables, scan header), its length kept
      var copy = segments
      let index = mutator.int(0..<copy.count)
      let body = Array(copy[index][4...])
      var mutated = mutator.mutateBytes(body)
      mutated = Array((mutated + body).prefix(body.count))
      copy[index] = Array(copy[index][..<4]) + mutated
      bytes = [0xFF, 0xD8] + copy.flatMap { $0 } + rest
    default:  // the entropy-coded data mutated (and so later scans, restart markers, EOI)
      bytes = [0xFF, 0xD8] + segments.flatMap { $0 } + mutator.mutateBytes(rest)
    }
    return bytes
  }

  /// Values an IHDR width or height is set to.
  static let hostilePNGDimensions: [UInt32] = [0, 1, 3, 65_535, 100_000, 1_000_000, 1_000_001, 0x7fff_ffff,
                                               0x8000_0000, 0xffff_ffff]

  /// A mutation along the PNG's chunks, CRCs recomputed: IHDR fields, a chunk's data mutated, chunks dropped,
  /// duplicated, reordered, or foreign chunks inserted.
  static func structuralPNG(_ seed: [UInt8], _ mutator: inout FuzzMutator) -> [UInt8] {
    guard var png = PNGChunks(seed) else { return mutator.mutateBytes(seed) }
    switch mutator.int(0..<6) {
    case 0:  // IHDR width and/or height
      let which = mutator.int(0..<3)
      if which != 1 {
        mutator.writeInteger(UInt64(mutator.pick(hostilePNGDimensions)), width: 4, bigEndian: true, at: 0,
                             in: &png.chunks[0].data)
      }
      if which != 0 {
        mutator.writeInteger(UInt64(mutator.pick(hostilePNGDimensions)), width: 4, bigEndian: true, at: 4,
                             in: &png.chunks[0].data)
      }
    case 1:  // IHDR bit depth, colour type, compression, filter or interlace method
      if png.chunks[0].data.count == 13 {
        png.chunks[0].data[8 + mutator.int(0..<5)] = mutator.pick([0, 1, 2, 3, 4, 6, 7, 8, 16, 255])
      }
    case 2:  // one chunk's data mutated (IDAT's zlib stream, PLTE, tRNS, …)
      let index = mutator.int(0..<png.chunks.count)
      png.chunks[index].data = mutator.mutateBytes(png.chunks[index].data)
    case 3:  // a chunk dropped or duplicated
      let index = mutator.int(0..<png.chunks.count)
      if mutator.chance(0.5) {
        png.chunks.remove(at: index)
      } else {
        png.chunks.insert(png.chunks[index], at: mutator.int(0...png.chunks.count))
      }
    case 4:  // two chunks swapped
      png.chunks.swapAt(mutator.int(0..<png.chunks.count), mutator.int(0..<png.chunks.count))
    default:  // a foreign or misplaced chunk inserted: a palette, transparency, gamma, an empty IDAT, an early IEND
      let chunk: (String, [UInt8]) = mutator.pick([
        ("PLTE", [UInt8](repeating: 7, count: 3 * mutator.int(0...300))),
        ("tRNS", [UInt8](repeating: 0, count: mutator.int(0...300))),
        ("gAMA", [0, 0, 0, 0]), ("sRGB", [9]), ("iCCP", Array("x\0\0garbage".utf8)),
        ("IDAT", []), ("IEND", []), ("IHDR", png.chunks[0].data), ("zzZz", [1, 2, 3]),
      ])
      png.chunks.insert((Array(chunk.0.utf8), chunk.1), at: mutator.int(0...png.chunks.count))
    }
    return png.encoded
  }

  /// 65535×65535 (and other products over the cap) in a frame header or IHDR with a correct CRC: refused before
  /// any pixel buffer exists. libjpeg itself refuses a JPEG dimension above 65500 (JPEG_MAX_DIMENSION) while
  /// reading the header; below that, and for PNG, `Image.maximumPixelCount` refuses it with `tooLarge`.
  @Test func hugeDimensionsAreRefusedByThePixelCap() throws {
    for seed in try Self.jpegSeeds() {
      var bytes = seed
      let sof = try #require(jpegFrameHeaderOffset(seed))
      for (height, width) in [(65_535, 65_535), (65_500, 65_500), (65_500, 2_733), (13_378, 13_378)] {
        bytes[sof + 3] = UInt8(height >> 8); bytes[sof + 4] = UInt8(height & 0xff)
        bytes[sof + 5] = UInt8(width >> 8); bytes[sof + 6] = UInt8(width & 0xff)
        #expect {
          try Image(decoding: bytes, source: "huge.jpg")
        } throws: { error in
          switch error as? ImageIOError {
          case let .decodeFailed(_, _, message)?: width > 65_500 && message.contains("Maximum supported image dimension")
          case .tooLarge?: error as? ImageIOError == .tooLarge(path: "huge.jpg", width: width, height: height,
                                                                 limit: Image.maximumPixelCount)
          default: false
          }
        }
      }
    }
    for seed in try Self.pngSeeds() {
      var png = try #require(PNGChunks(seed))
      for (width, height) in [(65_535, 65_535), (1_000_000, 179)] {
        png.chunks[0].data.replaceSubrange(0..<8, with: bigEndian32(UInt32(width)) + bigEndian32(UInt32(height)))
        #expect(throws: ImageIOError.tooLarge(path: "huge.png", width: width, height: height,
                                              limit: Image.maximumPixelCount)) {
          try Image(decoding: png.encoded, source: "huge.png")
        }
      }
    }
  }
}
