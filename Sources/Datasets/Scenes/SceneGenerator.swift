// Multi-object scenes composed from small gray items (Fashion-MNIST) on textured or gradient RGB backgrounds,
// with per-object boxes, visible-pixel masks and VOC-style difficult / truncated flags.
import Foundation

/// How scenes are drawn. The defaults give 96–256 px images with 1–4 objects of 28–112 px.
public struct SceneConfiguration: Sendable, Equatable {
  /// Width and height, each drawn uniformly, in pixels.
  public var imageSizes: ClosedRange<Int> = 96...256
  /// Objects the generator tries to place; fewer remain when no placement satisfies the overlap limits.
  public var objectCounts: ClosedRange<Int> = 1...4
  /// Item scale factor, drawn uniformly (28 px Fashion-MNIST items become 28–112 px).
  public var scales: ClosedRange<Double> = 1...4
  /// An object's longer side is at most this fraction of the image's shorter side.
  public var maximumObjectSide = 0.8
  /// A resized item's pixel is part of the object when its gray level is at least this, or when such pixels
  /// enclose it (see `SceneGenerator.silhouette`).
  public var foregroundLevel: UInt8 = 40
  /// A placement is accepted only when at least this fraction of the new object's pixels lie inside the image
  /// (objects may be cut by the border: truncated)…
  public var minimumInsideFraction = 0.6
  /// …and every earlier object keeps at least this fraction of its pixels visible (limited overlap).
  public var minimumKeptFraction = 0.25
  /// Random positions tried per object before it is dropped.
  public var placementAttempts = 20
  /// An object is difficult when fewer than this fraction of its pixels are visible (hidden by later objects
  /// or outside the image: "mostly hidden")…
  public var difficultVisibleFraction = 0.5
  /// …or when fewer than this many of its pixels are visible ("tiny"; a 28 px T-shirt has about 400).
  public var difficultArea = 120
  /// Backgrounds are the drawn pattern times this (1: as drawn; 0.2: dark, like Fashion-MNIST's black).
  public var backgroundBrightness = 1.0
  /// The probability that an object is tinted with a colour rather than left gray (white tint).
  public var tintProbability = 0.75
  /// Pixels whose 3×3 neighbourhood holds another instance (or background) are 255 in the class mask, VOC's
  /// object outline: 1 band on each side of every boundary, 2 px in all.
  public init() {}
}

/// One composed scene: the RGB image, the VOC class mask and the objects.
public struct Scene: Sendable, Equatable {
  /// An object as it ends up in the image. Boxes and masks cover its visible pixels only.
  public struct Object: Sendable, Equatable {
    public var classIndex: Int
    /// Tight box of the visible pixels, 0-based inclusive pixel indices.
    public var xmin: Int, ymin: Int, xmax: Int, ymax: Int
    /// Visible pixels (the COCO area).
    public var area: Int
    /// Pixels of the whole object, hidden or outside the image included.
    public var fullArea: Int
    public var isTruncated: Bool
    public var isDifficult: Bool
    /// The visible pixels.
    public var mask: COCORLE
  }

  public var image: Image      // RGB
  /// Palette indices: 0 background, class index + 1 on objects, 255 on object outlines (VOC's void label).
  public var classMask: Image  // 1 channel
  public var objects: [Object]
}

/// Draws scenes from `items`. `makeScene(using:)` is a pure function of the generator's state, so a scene set is
/// reproducible from a seed and can be generated in any order on any number of threads.
public struct SceneGenerator: Sendable {
  public var configuration: SceneConfiguration
  public let items: SceneItems

  public init(items: SceneItems, configuration: SceneConfiguration = SceneConfiguration()) {
    precondition(configuration.imageSizes.lowerBound >= 8 && configuration.objectCounts.lowerBound >= 0
                   && configuration.scales.lowerBound > 0,
                 "Scene configuration needs images ≥ 8 px, object counts ≥ 0 and positive scales.")
    self.items = items
    self.configuration = configuration
  }

  public func makeScene<G: RandomNumberGenerator>(using generator: inout G) -> Scene {
    let c = configuration
    let width = generator.sceneInteger(c.imageSizes)
    let height = generator.sceneInteger(c.imageSizes)
    var rgb = makeBackground(width: width, height: height, using: &generator)
    var instances = [UInt8](repeating: 0, count: width * height)  // 0 background, k + 1 for placed object k
    var classes: [Int] = []
    var fullAreas: [Int] = []
    var insideAreas: [Int] = []
    var visible: [Int] = []

    let objectCount = generator.sceneInteger(c.objectCounts)
    for _ in 0..<objectCount {
      let itemIndex = generator.transformIndex(below: items.count)
      let scale = generator.transformUniform(c.scales)
      let tint = Self.randomTint(tintProbability: c.tintProbability, using: &generator)
      var objectWidth = max(1, Int((Double(items.width) * scale).rounded()))
      var objectHeight = max(1, Int((Double(items.height) * scale).rounded()))
      let limit = max(1, Int(c.maximumObjectSide * Double(min(width, height))))
      if max(objectWidth, objectHeight) > limit {
        let shrink = Double(limit) / Double(max(objectWidth, objectHeight))
        objectWidth = max(1, Int((Double(objectWidth) * shrink).rounded()))
        objectHeight = max(1, Int((Double(objectHeight) * shrink).rounded()))
      }
      let gray = items.image(at: itemIndex).resized(width: objectWidth, height: objectHeight).pixels
      let shape = Self.silhouette(gray, width: objectWidth, height: objectHeight, level: c.foregroundLevel)
      let full = shape.reduce(0) { $0 + ($1 ? 1 : 0) }
      guard full > 0 else { continue }

      var placement: (x: Int, y: Int, inside: Int)?
      var covered = [Int](repeating: 0, count: classes.count)
      for _ in 0..<c.placementAttempts where placement == nil {
        let x0 = generator.sceneInteger(-objectWidth / 4...max(-objectWidth / 4, width - objectWidth + objectWidth / 4))
        let y0 = generator.sceneInteger(
          -objectHeight / 4...max(-objectHeight / 4, height - objectHeight + objectHeight / 4))
        for j in covered.indices { covered[j] = 0 }
        var inside = 0
        for v in 0..<objectHeight where (0..<height).contains(y0 + v) {
          for u in 0..<objectWidth where shape[v * objectWidth + u] && (0..<width).contains(x0 + u) {
            inside += 1
            let owner = Int(instances[(y0 + v) * width + x0 + u])
            if owner > 0 { covered[owner - 1] += 1 }
          }
        }
        let keepsOthers = covered.indices.allSatisfy {
          Double(visible[$0] - covered[$0]) >= c.minimumKeptFraction * Double(fullAreas[$0])
        }
        if inside > 0 && Double(inside) >= c.minimumInsideFraction * Double(full) && keepsOthers {
          placement = (x0, y0, inside)
        }
      }
      guard let (x0, y0, inside) = placement else { continue }

      // Paint: the item's gray level shades the tint (25 %…100 %), so its texture shows.
      let label = UInt8(classes.count + 1)
      for v in 0..<objectHeight where (0..<height).contains(y0 + v) {
        for u in 0..<objectWidth where shape[v * objectWidth + u] && (0..<width).contains(x0 + u) {
          let p = (y0 + v) * width + x0 + u
          let owner = Int(instances[p])
          if owner > 0 { visible[owner - 1] -= 1 }
          instances[p] = label
          let shade = 0.25 + 0.75 * Double(gray[v * objectWidth + u]) / 255
          for channel in 0..<3 { rgb[3 * p + channel] = UInt8((Double(tint[channel]) * shade).rounded()) }
        }
      }
      classes.append(items.labels[itemIndex])
      fullAreas.append(full)
      insideAreas.append(inside)
      visible.append(inside)
    }

    let objects = classes.indices.map { k in
      makeObject(instances: instances, width: width, height: height, label: UInt8(k + 1), classIndex: classes[k],
                 fullArea: fullAreas[k], insideArea: insideAreas[k])
    }
    return Scene(image: Image(width: width, height: height, channels: 3, pixels: rgb),
                 classMask: Self.classMask(instances: instances, width: width, height: height, classes: classes),
                 objects: objects)
  }

  private func makeObject(instances: [UInt8], width: Int, height: Int, label: UInt8, classIndex: Int,
                          fullArea: Int, insideArea: Int) -> Scene.Object {
    var (xmin, ymin, xmax, ymax, area) = (width, height, -1, -1, 0)
    for y in 0..<height {
      for x in 0..<width where instances[y * width + x] == label {
        xmin = min(xmin, x); xmax = max(xmax, x); ymin = min(ymin, y); ymax = max(ymax, y)
        area += 1
      }
    }
    precondition(area > 0, "Scene object \(label) has no visible pixels; placement should have kept 25 % of it.")
    let c = configuration
    let isDifficult = Double(area) < c.difficultVisibleFraction * Double(fullArea) || area < c.difficultArea
    return Scene.Object(classIndex: classIndex, xmin: xmin, ymin: ymin, xmax: xmax, ymax: ymax, area: area,
                        fullArea: fullArea, isTruncated: insideArea < fullArea, isDifficult: isDifficult,
                        mask: COCORLE(labels: instances, width: width, height: height, label: label))
  }

  /// The object's pixels: those at `level` or brighter, plus the darker ones they enclose (dark texture inside a
  /// garment is part of it). Pixels reachable from the item's border through darker pixels (4-connected) are
  /// background.
  static func silhouette(_ gray: [UInt8], width: Int, height: Int, level: UInt8) -> [Bool] {
    var isBackground = [Bool](repeating: false, count: width * height)
    var stack: [Int] = []
    for y in 0..<height {
      for x in 0..<width where (x == 0 || y == 0 || x == width - 1 || y == height - 1) && gray[y * width + x] < level {
        isBackground[y * width + x] = true
        stack.append(y * width + x)
      }
    }
    while let p = stack.popLast() {
      let (x, y) = (p % width, p / width)
      for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
      where nx >= 0 && ny >= 0 && nx < width && ny < height {
        let q = ny * width + nx
        if !isBackground[q] && gray[q] < level {
          isBackground[q] = true
          stack.append(q)
        }
      }
    }
    return isBackground.map { !$0 }
  }

  /// Class index + 1 per instance pixel, 0 for background, 255 where the 3×3 neighbourhood holds another label.
  static func classMask(instances: [UInt8], width: Int, height: Int, classes: [Int]) -> Image {
    var mask = [UInt8](repeating: 0, count: width * height)
    for y in 0..<height {
      for x in 0..<width {
        let label = instances[y * width + x]
        var isOutline = false
        for dy in -1...1 where (0..<height).contains(y + dy) && !isOutline {
          for dx in -1...1 where (0..<width).contains(x + dx) && instances[(y + dy) * width + x + dx] != label {
            isOutline = true
          }
        }
        mask[y * width + x] = isOutline ? 255 : (label == 0 ? 0 : UInt8(classes[Int(label) - 1] + 1))
      }
    }
    return Image(width: width, height: height, channels: 1, pixels: mask)
  }

  // MARK: - Backgrounds

  /// RGB bytes [height, width, 3]: a linear gradient, two sine gratings, or bilinear blotches, plus pixel noise.
  func makeBackground<G: RandomNumberGenerator>(width: Int, height: Int, using generator: inout G) -> [UInt8] {
    var values = [Double](repeating: 0, count: width * height * 3)
    switch generator.transformIndex(below: 3) {
    case 0:  // gradient between two colours along a random direction
      let from = Self.randomColor(using: &generator), to = Self.randomColor(using: &generator)
      let angle = generator.transformUniform(0...(2 * Double.pi))
      let (dx, dy) = (cos(angle), sin(angle))
      let corners = [0.0, Double(width - 1) * dx, Double(height - 1) * dy, Double(width - 1) * dx + Double(height - 1) * dy]
      let low = corners.min()!, span = max(corners.max()! - low, 1)
      for y in 0..<height {
        for x in 0..<width {
          let t = (Double(x) * dx + Double(y) * dy - low) / span
          for ch in 0..<3 { values[(y * width + x) * 3 + ch] = Double(from[ch]) * (1 - t) + Double(to[ch]) * t }
        }
      }
    case 1:  // a base colour modulated by two sine gratings (periods 6–48 px)
      let base = Self.randomColor(using: &generator)
      var waves: [(fx: Double, fy: Double, phase: Double, amplitude: [Double])] = []
      for _ in 0..<2 {
        let period = generator.transformUniform(6...48), angle = generator.transformUniform(0...Double.pi)
        let amplitude = (0..<3).map { _ in generator.transformUniform(-45...45) }
        waves.append((cos(angle) * 2 * .pi / period, sin(angle) * 2 * .pi / period,
                      generator.transformUniform(0...(2 * Double.pi)), amplitude))
      }
      for y in 0..<height {
        for x in 0..<width {
          for ch in 0..<3 {
            values[(y * width + x) * 3 + ch] = Double(base[ch]) + waves.reduce(0) {
              $0 + $1.amplitude[ch] * sin($1.fx * Double(x) + $1.fy * Double(y) + $1.phase)
            }
          }
        }
      }
    default:  // a coarse grid of random colours, upsampled with PIL's bilinear filter
      let gridWidth = 2 + generator.transformIndex(below: 7), gridHeight = 2 + generator.transformIndex(below: 7)
      let grid = (0..<gridWidth * gridHeight).flatMap { _ in Self.randomColor(using: &generator) }
      let blotches = Image(width: gridWidth, height: gridHeight, channels: 3, pixels: grid)
        .resized(width: width, height: height)
      for i in values.indices { values[i] = Double(blotches.pixels[i]) }
    }
    // Pixel noise, ±amplitude per channel, 8 random bits per channel from one draw per pixel.
    let amplitude = generator.transformUniform(2...12)
    var rgb = [UInt8](repeating: 0, count: values.count)
    for p in 0..<width * height {
      let bits = generator.next()
      for ch in 0..<3 {
        let noise = (Double((bits >> (8 * UInt64(ch))) & 0xFF) / 255 * 2 - 1) * amplitude
        rgb[3 * p + ch] = UInt8(min(255, max(0, (configuration.backgroundBrightness * values[3 * p + ch] + noise)
          .rounded())))
      }
    }
    return rgb
  }

  static func randomColor<G: RandomNumberGenerator>(using generator: inout G) -> [UInt8] {
    let bits = generator.next()
    return (0..<3).map { UInt8(truncatingIfNeeded: bits >> (8 * UInt64($0))) }
  }

  /// An object colour: a random hue at full saturation, mixed 0–60 % with white; a quarter stay white (gray items).
  static func randomTint<G: RandomNumberGenerator>(tintProbability: Double = 0.75,
                                                   using generator: inout G) -> [UInt8] {
    if generator.transformCoin(1 - tintProbability) { return [255, 255, 255] }
    let hue = generator.transformUniform(0...6), white = generator.transformUniform(0...0.6)
    let rgb = [abs(hue - 3) - 1, 2 - abs(hue - 2), 2 - abs(hue - 4)].map { min(1, max(0, $0)) }
    return rgb.map { UInt8(((white + (1 - white) * $0) * 255).rounded()) }
  }
}

extension RandomNumberGenerator {
  /// Uniform Int in a closed range.
  mutating func sceneInteger(_ range: ClosedRange<Int>) -> Int {
    range.lowerBound + transformIndex(below: range.count)
  }
}
