package io.veggur.vmi.transport;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A test CA with a server and a client identity, made with the JDK's keytool (the client library has no certificate
 * code): {@code server.p12} (SAN IP 127.0.0.1, server auth) and {@code client.p12} (client auth) each hold the key
 * with its chain and the CA as a trusted entry, like the agent's PKCS#12 files; {@code rogue.p12} is a self-signed
 * server identity for 127.0.0.1 that the CA never saw. Every store's password is {@value #PASSWORD}.
 */
final class KeytoolPki {
    static final String PASSWORD = "test-secret";

    final Path server;
    final Path client;
    final Path rogue;

    KeytoolPki(Path directory) throws IOException, InterruptedException {
        Path ca = directory.resolve("ca.p12");
        Path caPem = directory.resolve("ca.pem");
        server = directory.resolve("server.p12");
        client = directory.resolve("client.p12");
        rogue = directory.resolve("rogue.p12");
        newKeyPair(ca, "ca", "bc:c");
        keytool("-exportcert", "-keystore", ca, "-alias", "ca", "-rfc", "-file", caPem);
        issue(ca, caPem, server, "server", "san=ip:127.0.0.1", "eku=serverAuth");
        issue(ca, caPem, client, "client", "eku=clientAuth");
        newKeyPair(rogue, "rogue", "san=ip:127.0.0.1");
    }

    private static void issue(Path ca, Path caPem, Path store, String name, String... extensions)
            throws IOException, InterruptedException {
        Path request = store.resolveSibling(name + ".csr");
        Path certificate = store.resolveSibling(name + ".pem");
        newKeyPair(store, name);
        keytool("-certreq", "-keystore", store, "-alias", name, "-file", request);
        keytool(withExtensions(List.of("-gencert", "-keystore", ca, "-alias", "ca", "-infile", request, "-outfile",
                certificate, "-rfc", "-validity", "2"), extensions));
        keytool("-importcert", "-keystore", store, "-alias", "ca", "-file", caPem, "-noprompt");
        keytool("-importcert", "-keystore", store, "-alias", name, "-file", certificate);
    }

    private static void newKeyPair(Path store, String alias, String... extensions)
            throws IOException, InterruptedException {
        keytool(withExtensions(List.of("-genkeypair", "-keystore", store, "-alias", alias, "-dname", "CN=" + alias,
                "-keyalg", "EC", "-groupname", "secp256r1", "-validity", "2"), extensions));
    }

    private static Object[] withExtensions(List<Object> command, String... extensions) {
        List<Object> all = new ArrayList<>(command);
        for (String extension : extensions) {
            all.add("-ext");
            all.add(extension);
        }
        return all.toArray();
    }

    private static void keytool(Object... arguments) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "keytool").toString(), "-storepass", PASSWORD));
        for (Object argument : arguments) {
            command.add(argument.toString());
        }
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (process.waitFor() != 0) {
            throw new IOException("keytool " + String.join(" ", command.subList(3, command.size())) + ": " + output);
        }
    }

    static void writePassword(Path identity, String password) throws IOException {
        Files.writeString(Path.of(identity + ".password"), password + "\n");
    }
}
