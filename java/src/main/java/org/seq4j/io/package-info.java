/** Weight files: {@link org.seq4j.io.SafeTensors}, the format PyTorch and Hugging Face use. */
package org.seq4j.io;
