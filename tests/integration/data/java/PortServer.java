/* SPDX-License-Identifier: MIT */
// PortServer - an unmodified-style Java server and client for the
// portshim matrix: `new ServerSocket(9000)` (the JDK binds a dual-stack
// IPv6 socket, [::]:9000) and `new Socket("127.0.0.1", 9000)` (which
// the JDK connects as ::ffff:127.0.0.1 on an IPv6 socket).
//
//   java PortServer serve TEXT   prints "listening PORT" (getLocalPort)
//                                and answers every connection with TEXT
//   java PortServer get          connects to 127.0.0.1:9000 and prints
//                                the first line it reads
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

public class PortServer {
    public static void main(String[] args) throws Exception {
        if (args.length == 2 && args[0].equals("serve")) {
            try (ServerSocket server = new ServerSocket(9000)) {
                System.out.println("listening " + server.getLocalPort());
                System.out.flush();
                for (;;) {
                    try (Socket s = server.accept()) {
                        OutputStream out = s.getOutputStream();
                        out.write((args[1] + "\n")
                                  .getBytes(StandardCharsets.UTF_8));
                        out.flush();
                    }
                }
            }
        } else if (args.length == 1 && args[0].equals("get")) {
            try (Socket s = new Socket("127.0.0.1", 9000)) {
                BufferedReader in = new BufferedReader(new InputStreamReader(
                    s.getInputStream(), StandardCharsets.UTF_8));
                System.out.println(in.readLine());
            }
        } else {
            System.err.println("usage: PortServer serve TEXT | get");
            System.exit(2);
        }
    }
}
