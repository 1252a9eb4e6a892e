// Bad input for the codecs: random bytes, every truncation, bit flips (each must throw or decode, never crash),
// and the file layer's errors (missing, empty, unsupported, chosen by magic bytes).
import Foundation
import Testing
import Datasets
import Tensors
import TestSupport

/// Decodes `bytes` in every mode; an outcome is a valid image (the `Image` initialiser checks its size) or an
/// `ImageIOError`. Any other error fails the test; a crash fails the run.
private func decodeOutcomes(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation)
  -> (decoded: Int, failed: Int)
{
  var decoded = 0, failed = 0
  for mode in [ImageColorMode.grayOrRGB, .rgb, .indices] {
    do {
      let image = try Image(decoding: bytes, mode: mode, source: "fuzz")
      #expect(image.pixels.count == image.width * image.height * image.channels, sourceLocation: sourceLocation)
      decoded += 1
    } catch let error as ImageIOError {
      #expect(error.description.contains("fuzz"), "\(error)", sourceLocation: sourceLocation)
      failed += 1
    } catch {
      Issue.record("not an ImageIOError: \(error)", sourceLocation: sourceLocation)
    }
  }
  return (decoded, failed)
}

@Suite struct CodecFuzzTests {
  static let samples = ["astronaut_24x16_cmyk.jpg", "camera_64x64_gray.jpg", "chelsea_64x48_q95_444_progressive.jpg",
                        "coffee_20x15_rgb.png", "voc_mask_17x13.png", "coffee_20x15_adam7.png", "rgba16_6x5.png"]

  @Test func randomBytesThrowOrDecode() {
    var rng = SplitMix64(seed: 11)
    for trial in 0..<600 {
      var bytes = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
      // A third keep the random bytes; the others start like a JPEG or a PNG so the libraries parse them.
      switch trial % 3 {
      case 1: bytes = [0xFF, 0xD8, 0xFF] + bytes
      case 2: bytes = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + bytes
      default: break
      }
      _ = decodeOutcomes(bytes)
    }
  }

  /// Every prefix of small JPEGs (baseline, gray, CMYK, progressive, restart markers, corrupt scan data) and PNGs
  /// throws `truncated`, as PIL reports "image file is truncated". Only a PNG cut inside its final IEND chunk may
  /// decode (PIL decodes those too).
  @Test(arguments: ["astronaut_24x16_cmyk.jpg", "camera_64x64_gray.jpg", "chelsea_64x48_q95_444_progressive.jpg",
                    "hubble_61x47_q75_optimized_restart.jpg", "coffee_75x51_corrupt_scan.jpg",
                    "coffee_20x15_rgb.png", "palette_7x5_trns.png", "coffee_20x15_adam7.png"])
  func everyTruncationThrowsTruncated(_ file: String) throws {
    let bytes = try CodecFixtures.bytes(file)
    let mayDecodeFrom = file.hasSuffix(".png") ? bytes.count - 12 : bytes.count
    var wrongErrors: [String] = []
    for length in 0..<bytes.count {
      let prefix = Array(bytes.prefix(length))
      do {
        _ = try Image(decoding: prefix, source: "cut")
        if length < mayDecodeFrom { wrongErrors.append("\(length): decoded") }
      } catch ImageIOError.truncated {
      } catch {
        wrongErrors.append("\(length): \(error)")
      }
    }
    #expect(wrongErrors.isEmpty, "\(file) (\(bytes.count) bytes) cut to \(wrongErrors.prefix(5))")
  }

  /// Truncations are reported as such (not as generic corruption) once the header is complete.
  @Test func truncationIsNamedInTheError() throws {
    for file in ["astronaut_96x96_q90.jpg", "coffee_20x15_rgb.png"] {
      let bytes = try CodecFixtures.bytes(file)
      #expect {
        try Image(decoding: Array(bytes.prefix(bytes.count - 40)), source: file)
      } throws: { error in
        guard case .truncated(file, _)? = error as? ImageIOError else { return false }
        return "\(error)".contains(file) && "\(error)".contains("truncated")
      }
    }
  }

  @Test(arguments: samples)
  func bitFlipsThrowOrDecode(_ file: String) throws {
    try flipBits(file, trials: 150, seed: 1)
  }

  @Test(.tags(.slow), .enabled(if: runsSlowTests), arguments: samples)
  func manyBitFlipsThrowOrDecode(_ file: String) throws {
    try flipBits(file, trials: 5000, seed: 2)
  }

  /// Flips 1–4 random bits per trial (corrupting lengths, CRCs, tables, entropy-coded data).
  private func flipBits(_ file: String, trials: Int, seed: UInt64) throws {
    let original = try CodecFixtures.bytes(file)
    var rng = SplitMix64.derived(seed, UInt64(original.count))
    var outcomes = (decoded: 0, failed: 0)
    for trial in 0..<trials {
      var bytes = original
      for _ in 0..<(1 + trial % 4) {
        let bit = Int.random(in: 0..<bytes.count * 8, using: &rng)
        bytes[bit / 8] ^= UInt8(1 << (bit % 8))
      }
      let (decoded, failed) = decodeOutcomes(bytes)
      outcomes.decoded += decoded
      outcomes.failed += failed
    }
    #expect(outcomes.decoded + outcomes.failed == 3 * trials)
  }
}

// A class so that each test's scratch folder is removed when the test ends (deinit).
@Suite final class ImageFileTests {
  let folder: URL

  init() throws {
    folder = FileManager.default.temporaryDirectory.appendingPathComponent("ImageFileTests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  }

  deinit { try? FileManager.default.removeItem(at: folder) }

  func error(reading name: String) -> ImageIOError? {
    do {
      _ = try Image(contentsOf: folder.appendingPathComponent(name))
      return nil
    } catch {
      return error as? ImageIOError
    }
  }

  @Test func writesByExtensionAndReadsByMagicBytes() throws {
    let image = try decodePNG(try CodecFixtures.bytes("coffee_20x15_rgb.png"))
    let png = folder.appendingPathComponent("coffee.png")
    try image.write(to: png)
    // The same PNG bytes under a .jpg name: the magic bytes decide.
    let misnamed = folder.appendingPathComponent("coffee.jpg")
    try FileManager.default.copyItem(at: png, to: misnamed)
    #expect(try Image(contentsOf: misnamed) == image)
    #expect(try ImageHeader(contentsOf: misnamed).format == .png)

    let jpeg = folder.appendingPathComponent("coffee.jpeg")
    try image.write(to: jpeg, jpegQuality: 95)
    #expect(try ImageHeader(contentsOf: jpeg) == ImageHeader(format: .jpeg, width: 20, height: 15, channels: 3,
                                                               hasPalette: false))
    let mask = Image(width: 3, height: 2, channels: 1, pixels: [0, 15, 255, 255, 7, 0])
    let maskURL = folder.appendingPathComponent("mask.png")
    try mask.writePalettePNG(to: maskURL)
    #expect(try Image(contentsOf: maskURL, mode: .indices) == mask)
  }

  @Test func missingEmptyAndDirectoryFilesNameThePath() throws {
    guard case let .unreadableFile(path, reason)? = error(reading: "missing.jpg") else {
      Issue.record("a missing file must be unreadableFile")
      return
    }
    #expect(path.hasSuffix("missing.jpg") && reason == "no such file")
    try FileManager.default.createDirectory(at: folder.appendingPathComponent("dir.png"),
                                            withIntermediateDirectories: true)
    #expect(error(reading: "dir.png") == .unreadableFile(path: folder.appendingPathComponent("dir.png").path,
                                                         reason: "it is a directory"))
    _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("empty.jpg").path, contents: Data())
    guard case .truncated? = error(reading: "empty.jpg") else {
      Issue.record("an empty file must be truncated")
      return
    }
  }

  @Test func otherFormatsAreNamedInTheError() throws {
    _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("anim.jpg").path,
                                       contents: Data("GIF89a\u{1}\u{0}\u{1}\u{0}".utf8))
    let gif = try #require(error(reading: "anim.jpg"))
    #expect("\(gif)".contains("anim.jpg") && "\(gif)".contains("GIF"), "\(gif)")
    _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("page.png").path,
                                       contents: Data("<!DOCTYPE html><html>".utf8))
    #expect("\(try #require(error(reading: "page.png")))".contains("HTML"))
    #expect(throws: ImageIOError.self) {
      try Image(width: 1, height: 1, channels: 1).write(to: folder.appendingPathComponent("x.bmp"))
    }
  }
}
