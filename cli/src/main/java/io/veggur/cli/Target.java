package io.veggur.cli;

import io.veggur.host.vm.VmException;
import io.veggur.vmi.IntrospectionSession;
import java.io.IOException;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Option;

/** Which introspection socket a {@code vmi} command talks to: {@code --socket ENDPOINT} or {@code --vm NAME}. */
final class Target {
    @ArgGroup(exclusive = true, multiplicity = "1")
    Choice choice;

    static final class Choice {
        @Option(names = "--socket", paramLabel = "PATH", description = "Introspection socket (unix:PATH or a path).")
        String socket;

        @Option(names = "--vm", paramLabel = "NAME", description = "A VM on this host, by name.")
        String vm;
    }

    String endpoint() throws VmException, IOException {
        if (choice.socket != null) {
            return choice.socket;
        }
        return VmCommand.manager().info(choice.vm).socket();
    }

    IntrospectionSession connect() throws VmException, IOException {
        String endpoint = endpoint();
        try {
            return IntrospectionSession.connect(endpoint);
        } catch (io.veggur.protocol.ProtocolException e) {
            throw new IOException(endpoint + " does not speak the Veggur introspection protocol (" + e.getMessage() + ")");
        } catch (java.io.EOFException e) {
            throw new IOException(endpoint + " closed the connection during the handshake; is it a Veggur introspection socket?");
        }
    }
}
