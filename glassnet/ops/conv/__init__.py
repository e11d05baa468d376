"""2-D convolution: the lecture's im2col + one matrix multiply, and its col2im backward."""
