package io.veggur.cli;

import io.veggur.vmi.transport.SocketRelay;
import io.veggur.vmi.transport.Transport;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code veggur relay ENDPOINT --listen PATH}: a remote introspection endpoint as a local UNIX socket. */
@Command(name = "relay", mixinStandardHelpOptions = true, description = {
        "Re-expose a remote introspection endpoint (tls://HOST:PORT?identity=FILE, tcp://HOST:PORT) as a local UNIX",
        "socket for tools that only speak UNIX sockets, e.g. --listen ~/.veggur/web/vmi.sock, then",
        "veggur vmi ps --socket ~/.veggur/web/vmi.sock. Runs until interrupted."})
final class RelayCommand implements Callable<Integer> {
    @Parameters(paramLabel = "ENDPOINT") String endpoint;

    @Option(names = "--listen", required = true, paramLabel = "PATH",
            description = "The local socket; its directory must be yours alone (created 0700 if missing).")
    Path listen;

    @Override
    public Integer call() throws Exception {
        Transport upstream = Transport.parse(endpoint);
        try (SocketRelay relay = SocketRelay.start(listen, upstream, line -> System.err.println("veggur relay: " + line))) {
            Runtime.getRuntime().addShutdownHook(new Thread(relay::close));
            System.err.println("veggur relay: " + listen.toAbsolutePath() + " -> " + upstream.describe());
            relay.awaitClose();
        }
        return 0;
    }
}
