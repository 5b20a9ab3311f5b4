/**
 * Weight files: {@link org.seq4j.io.SafeTensors}, the format PyTorch and Hugging Face use. Files
 * are untrusted input: a header is validated completely before anything is allocated, and every
 * malformed file is an {@link java.io.IOException} naming the file and the tensor.
 */
package org.seq4j.io;
