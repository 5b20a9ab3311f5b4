/**
 * Weight files: {@link org.seq4j.io.SafeTensors}, the format PyTorch and Hugging Face use. Files
 * are untrusted input: a header is validated completely before anything is allocated, and every
 * malformed file is an {@link java.io.IOException} naming the file and the tensor. F16, BF16 and
 * F64 tensors are read as F32; tensors are written as F32 or BF16; a file's header can be read
 * alone, and its tensors one by one.
 */
package org.seq4j.io;
