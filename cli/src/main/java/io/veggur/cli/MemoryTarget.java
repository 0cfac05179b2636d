package io.veggur.cli;

import io.veggur.host.vm.VmException;
import io.veggur.protocol.MemoryMap;
import io.veggur.vmi.IntrospectionSession;
import io.veggur.vmi.memory.MappedPhysicalMemory;
import io.veggur.vmi.memory.PhysicalMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Option;

/**
 * Where guest-physical memory comes from for the Linux commands: a live VM's socket ({@code --socket}, {@code --vm})
 * or a raw physical memory image ({@code --image}), read the same way.
 */
final class MemoryTarget {
    @ArgGroup(exclusive = true, multiplicity = "1")
    Choice choice;

    static final class Choice {
        @Option(names = "--socket", paramLabel = "PATH", description = "Introspection socket (unix:PATH or a path).")
        String socket;

        @Option(names = "--vm", paramLabel = "NAME", description = "A VM on this host, by name.")
        String vm;

        @Option(names = "--image", paramLabel = "FILE", description = "A raw physical memory image (byte N = address N).")
        Path image;
    }

    /** Guest memory plus whatever must be closed with it. */
    record Source(PhysicalMemory memory, AutoCloseable owner) implements AutoCloseable {
        @Override
        public void close() throws Exception {
            owner.close();
        }
    }

    Source open() throws IOException, VmException {
        if (choice.image != null) {
            if (!Files.isRegularFile(choice.image)) {
                throw new NoSuchFileException(choice.image.toString(), null, "no memory image here");
            }
            long size = Files.size(choice.image);
            if (size < 1 << 20) {
                throw new IOException(choice.image + " holds " + size + " bytes: too small for a memory image");
            }
            MappedPhysicalMemory memory = MappedPhysicalMemory.of(choice.image, MemoryMap.flat(size));
            return new Source(memory, memory);
        }
        Target target = new Target();
        target.choice = new Target.Choice();
        target.choice.socket = choice.socket;
        target.choice.vm = choice.vm;
        IntrospectionSession session = target.connect();
        return new Source(session.physicalMemory(), session);
    }
}
