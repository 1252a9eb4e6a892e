// Items for scene devkits in tests, without the Fashion-MNIST package.
import Datasets

extension SceneItems {
  /// 20 synthetic 28×28 items, two per class, of class-dependent shape (width 6 + 2·class, height 24 − class) and
  /// texture, under Fashion-MNIST's class names.
  public static func syntheticForTests() -> SceneItems {
    var pixels: [UInt8] = []
    var labels: [Int] = []
    for index in 0..<20 {
      let label = index % 10
      let (w, h) = (6 + 2 * label, 24 - label)
      for y in 0..<28 {
        for x in 0..<28 {
          pixels.append(abs(x - 14) * 2 < w && abs(y - 14) * 2 < h ? UInt8(60 + (x * 7 + y * 3 + index) % 196) : 0)
        }
      }
      labels.append(label)
    }
    return SceneItems(classNames: SceneItems.fashionMNISTClassNames, width: 28, height: 28, pixels: pixels,
                      labels: labels)
  }
}
