"""Getting a trained model out of the training code: ONNX export checked against torch."""
