// Placeholder so the target builds; ResNet and SimSiam land in this module.
import Layers
