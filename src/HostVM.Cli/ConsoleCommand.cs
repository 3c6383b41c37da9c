using System.CommandLine;
using System.Net.WebSockets;
using HostVM.Cli.Api;

namespace HostVM.Cli;

/// <summary>
/// `hostvm vm console NAME [--watch] [--replay BYTES]`: the VM's serial console over the daemon's
/// WebSocket. Keys go to the guest (the terminal in raw mode, so Ctrl-C reaches it too); Ctrl-] detaches,
/// as in telnet and virsh. The VM runs on after detaching. One session at a time may type; --watch
/// attaches read-only (keys other than Ctrl-] are not sent), alongside the writer. When standard input is not a terminal its bytes are sent as they come, and
/// at its end the console stays attached (printing) until Ctrl-], the VM stops, or the command is interrupted.
/// </summary>
public static class ConsoleCommand
{
    /// <summary>Ctrl-]: detaches.</summary>
    public const byte DetachKey = 0x1d;

    public static Command Create(DaemonCommandRunner runner)
    {
        ArgumentNullException.ThrowIfNull(runner);
        var name = new Argument<string>("name") { Description = "The VM's name (or id)." };
        var watch = new Option<bool>("--watch") { Description = "Read-only: see the output while another session types." };
        var replay = new Option<int?>("--replay") { Description = "Show this many bytes of earlier output first (0 to 1048576; default 16384)." };
        var command = new Command("console", "Attach to a VM's serial console (the last 16 KiB of output first); Ctrl-] detaches.") { name, watch, replay };
        runner.SetAction(command, call => AttachAsync(call, call.Get(name), call.Get(watch), call.Get(replay)));
        return command;
    }

    private static async Task<int> AttachAsync(DaemonCall call, string name, bool watch, int? replay)
    {
        var environment = call.Environment;
        var vm = (await call.Client.GetVmAsync(name, call.CancellationToken).ConfigureAwait(false)).Value;
        WebSocket socket;
        try
        {
            socket = await call.Client.OpenConsoleAsync(name, watch, replay, call.CancellationToken).ConfigureAwait(false);
        }
        catch (DaemonException e) when (e.Status == 409)
        {
            // A refused WebSocket handshake carries no problem+json we can read; the state says why.
            throw new DaemonException(e.Status, e.Problem, vm.State is "running" or "paused"
                ? $"{e.Message.TrimEnd('.')}: another session is typing at the console of {vm.Name}; `hostvm vm console {vm.Name} --watch` reads alongside it."
                : $"{e.Message.TrimEnd('.')}: {vm.Name} is {vm.State}; a console exists while the VM runs (`hostvm vm start {vm.Name}`).");
        }

        using var _ = socket;
        environment.Error.WriteLine($"hostvm: attached to the console of {vm.Name} ({vm.State}{(watch ? ", read-only" : string.Empty)}); Ctrl-] detaches.");
        environment.Error.Flush();

        string how;
        using (var terminal = environment.InputIsTerminal ? TerminalMode.EnterRaw() : null)
        using (var output = environment.OpenOutput())
        {
            var receive = ReceiveAsync(socket, output, call.CancellationToken);
            var send = SendAsync(socket, environment.OpenInput(), sendKeys: !watch, call.CancellationToken);
            var first = await Task.WhenAny(receive, send).ConfigureAwait(false);
            bool detached = first == send && await send.ConfigureAwait(false);
            if (first == send && !detached)
            {
                await receive.ConfigureAwait(false); // input ended: keep printing until the console closes
            }

            how = detached || call.CancellationToken.IsCancellationRequested ? "detached"
                : socket.CloseStatusDescription is { Length: > 0 } reason ? $"the console closed: {reason}"
                : "the console closed (the VM stopped)";
            await CloseAsync(socket).ConfigureAwait(false);
        }

        environment.Error.WriteLine($"{(environment.InputIsTerminal ? "\r\n" : string.Empty)}hostvm: {how}.");
        return ExitCodes.Ok;
    }

    /// <summary>Copies the console's frames to <paramref name="output"/> until the daemon closes the socket.</summary>
    private static async Task ReceiveAsync(WebSocket socket, Stream output, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 << 10];
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }

                await output.WriteAsync(buffer.AsMemory(0, result.Count), cancellationToken).ConfigureAwait(false);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException)
        {
            // The daemon went away without a close frame, stdout was closed, or Ctrl-C: the console is over.
        }
    }

    /// <summary>Sends standard input as binary frames (unless only watching); true if the user detached with Ctrl-], false at the end of input.</summary>
    private static Task<bool> SendAsync(WebSocket socket, Stream input, bool sendKeys, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        // A blocking read of fd 0 on its own thread: a terminal or pipe read cannot be cancelled, and
        // when the command ends the thread simply goes with the process.
        var thread = new Thread(() =>
        {
            try
            {
                var buffer = new byte[4096];
                while (true)
                {
                    int n = input.Read(buffer, 0, buffer.Length);
                    if (n <= 0)
                    {
                        done.TrySetResult(false);
                        return;
                    }

                    int detach = Array.IndexOf(buffer, DetachKey, 0, n);
                    int length = detach < 0 ? n : detach;
                    if (length > 0 && sendKeys)
                    {
                        socket.SendAsync(buffer.AsMemory(0, length), WebSocketMessageType.Binary, endOfMessage: true, cancellationToken)
                            .AsTask().GetAwaiter().GetResult();
                    }

                    if (detach >= 0)
                    {
                        done.TrySetResult(true);
                        return;
                    }
                }
            }
            catch (Exception e) when (e is IOException or WebSocketException or ObjectDisposedException or OperationCanceledException
                                           or UnauthorizedAccessException or InvalidOperationException)
            {
                done.TrySetResult(false); // no usable input, or the console closed under us
            }
            finally
            {
                input.Dispose();
            }
        })
        {
            IsBackground = true,
            Name = "console-input",
        };
        thread.Start();
        return done.Task;
    }

    private static async Task CloseAsync(WebSocket socket)
    {
        if (socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived))
        {
            return;
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "detached", timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            // Closing is a courtesy: the daemon detaches us when the connection drops anyway.
        }
    }
}
