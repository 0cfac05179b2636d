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
 * What a {@code vmi} command looks at: a live VM's introspection socket ({@code --socket ENDPOINT} or
 * {@code --vm NAME}) or a raw physical memory image ({@code --image FILE}, byte N = guest-physical address N). Memory
 * is read the same way from either; registers and VM control need a live VM.
 */
final class Target {
    @ArgGroup(exclusive = true, multiplicity = "1")
    Choice choice;

    @Option(names = "--no-descriptor", description = "Read memory through the socket (page cache included) even where "
            + "the socket grants the zero-copy descriptor, as remote clients do (for comparisons).")
    boolean noDescriptor;

    static final class Choice {
        @Option(names = "--socket", paramLabel = "ENDPOINT", description = "Introspection socket: a path (unix:PATH), "
                + "tls://HOST:PORT?identity=FILE, tcp://HOST:PORT, serial:PORT-NAME or vsock:CID:PORT.")
        String socket;

        @Option(names = "--vm", paramLabel = "NAME", description = "A VM on this host, by name.")
        String vm;

        @Option(names = "--image", paramLabel = "FILE", description = "A raw physical memory image.")
        Path image;
    }

    /** Guest memory plus whatever must be closed with it. */
    record Source(PhysicalMemory memory, AutoCloseable owner) implements AutoCloseable {
        @Override
        public void close() throws Exception {
            owner.close();
        }
    }

    /** Guest-physical memory: the zero-copy mapping of a local VM, remote reads, or the mapped image. */
    Source open() throws IOException, VmException {
        if (choice.image == null) {
            IntrospectionSession session = connect();
            return new Source(noDescriptor ? session.cachedRemotePhysicalMemory() : session.physicalMemory(), session);
        }
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

    /** A session with a live VM; an image cannot answer for registers or VM state. */
    IntrospectionSession connect() throws VmException, IOException {
        if (choice.image != null) {
            throw new IllegalArgumentException("this command needs a live VM (--socket or --vm), not --image");
        }
        return IntrospectionSession.connect(choice.socket != null ? choice.socket : HostVmCommand.manager().info(choice.vm).socket());
    }
}
