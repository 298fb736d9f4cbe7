"""Tensor operations shared by the losses, the miners and the collapse monitor: B x B distance and
similarity matrices with lean backward passes, row normalisation, and masks over a batch's pairs."""
