using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json;

namespace HostVM.Integration.Tests;

/// <summary>
/// The console over the daemon's WebSocket with a real guest: watchers and one writer, replay on
/// attach, the size limit on input, the serial log's bound on disk (across a daemon restart), and sessions
/// that end with their token and are capped per token and per VM.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class ConsoleWebSocketTests
{
    private static async Task<JsonElement> StartShellVmAsync(DaemonUnderTest daemon, string name)
    {
        await daemon.ImportGuestAsync();
        var vm = await daemon.CreateVmAsync(new { name, image = "guest", vcpus = 1, memory_mib = 128 });
        var (status, body) = await daemon.SendAsync(HttpMethod.Post, $"/v1/vms/{name}/start");
        Assert.True(status == 200, body.ToString());
        await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY", 180);
        return vm;
    }

    private static long SizeOrZero(string path)
    {
        try
        {
            return new FileInfo(path).Length;
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
    }

    private static async Task<string> StateAsync(DaemonUnderTest daemon, string name) =>
        (await daemon.GetAsync($"/v1/vms/{name}")).GetProperty("state").GetString()!;

    private static async Task<string> LogAsync(DaemonUnderTest daemon, string name, int bytes = 1 << 20)
    {
        var response = await daemon.Client.GetAsync($"/v1/vms/{name}/console/log?bytes={bytes}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsStringAsync();
    }

    [Fact]
    public async Task WatchersSeeTheWriterTypeButCannotTypeThemselves()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await StartShellVmAsync(daemon, "shared");

        using var writer = await WebConsole.AttachAsync(daemon, "shared", "mode=write&replay=1048576");
        using var watcher = await WebConsole.AttachAsync(daemon, "shared", "mode=watch&replay=1048576");
        await writer.WaitForAsync("HOSTVM-GUEST-READY");
        await watcher.WaitForAsync("HOSTVM-GUEST-READY");

        // One writer at a time: the second is refused before the upgrade.
        var (second, status) = await WebConsole.TryAttachAsync(daemon, "shared", "mode=write");
        Assert.Null(second);
        Assert.Equal(HttpStatusCode.Conflict, status);
        var (_, badMode) = await WebConsole.TryAttachAsync(daemon, "shared", "mode=admin");
        Assert.Equal(HttpStatusCode.BadRequest, badMode);

        // Access control: a viewer may watch, not type; a token of another project does not find the VM.
        var (_, viewerBody) = await daemon.SendAsync(HttpMethod.Post, "/v1/tokens", new { role = "viewer" });
        string viewer = viewerBody.GetProperty("token").GetString()!;
        Assert.Equal(HttpStatusCode.Forbidden, (await WebConsole.TryAttachAsync(daemon, "shared", "mode=write", viewer)).Status);
        using var viewerWatch = await WebConsole.AttachAsync(daemon, "shared", "mode=watch&replay=1048576", viewer);
        await viewerWatch.WaitForAsync("HOSTVM-GUEST-READY");
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/projects", new { name = "elsewhere" })).Status);
        var (_, otherBody) = await daemon.SendAsync(HttpMethod.Post, "/v1/tokens", new { role = "operator", project = "elsewhere" });
        Assert.Equal(HttpStatusCode.NotFound, (await WebConsole.TryAttachAsync(daemon, "shared", "mode=watch", otherBody.GetProperty("token").GetString())).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await WebConsole.TryAttachAsync(daemon, "shared", "mode=watch", "hvt_0123456789abcdef_nope")).Status);

        await writer.SendAsync("echo WRITER-TYPED-$((6*7))\n");
        await writer.WaitForAsync("WRITER-TYPED-42");
        await watcher.WaitForAsync("WRITER-TYPED-42");

        // A watcher's keys never reach the guest: it is closed with 1008 and the computed marker never appears.
        await watcher.SendAsync("echo WATCHER-TYPED-$((6*7))\n");
        var (closed, reason) = await watcher.WaitClosedAsync();
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, closed);
        Assert.Contains("read-only", reason, StringComparison.Ordinal);
        await writer.SendAsync("echo AFTER-WATCHER-$((2*3))\n");
        await writer.WaitForAsync("AFTER-WATCHER-6");
        Assert.DoesNotContain("WATCHER-TYPED-42", writer.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("WATCHER-TYPED-42", watcher.Output, StringComparison.Ordinal);
        string log = await LogAsync(daemon, "shared");
        Assert.Contains("WRITER-TYPED-42", log, StringComparison.Ordinal);
        Assert.DoesNotContain("WATCHER-TYPED-42", log, StringComparison.Ordinal);

        // Detaching leaves the VM running; attaching again replays what came before.
        await writer.DetachAsync();
        Assert.Equal("running", await StateAsync(daemon, "shared"));
        using var again = await WebConsole.AttachAsync(daemon, "shared");
        await again.WaitForAsync("AFTER-WATCHER-6");

        // An input message over the limit closes that socket (1009) and types nothing; the VM runs on.
        await again.SendAsync(System.Text.Encoding.ASCII.GetBytes("echo TOO-BIG-$((5*5)) " + new string('x', 70 * 1024) + "\n"));
        (closed, _) = await again.WaitClosedAsync();
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, closed);
        Assert.Equal("running", await StateAsync(daemon, "shared"));
        using var last = await WebConsole.AttachAsync(daemon, "shared", "replay=0");
        await last.SendAsync("echo STILL-HERE-$((3*3))\n");
        await last.WaitForAsync("STILL-HERE-9");
        Assert.DoesNotContain("TOO-BIG-25", await LogAsync(daemon, "shared"), StringComparison.Ordinal);

        // Stopping the VM closes every session normally, saying why.
        using var stopWatcher = await WebConsole.AttachAsync(daemon, "shared", "mode=watch");
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/shared/stop", new { force = true })).Status);
        Assert.Equal((WebSocketCloseStatus.NormalClosure, "the VM stopped"), await stopWatcher.WaitClosedAsync());
        Assert.Equal((WebSocketCloseStatus.NormalClosure, "the VM stopped"), await last.WaitClosedAsync());
        Assert.Contains("STILL-HERE-9", await LogAsync(daemon, "shared"), StringComparison.Ordinal); // the log outlives the VM
    }

    [Fact]
    public async Task TheSerialLogStaysBoundedAndAdoptedVmsReplayTheirLatestOutput()
    {
        const int cap = 64 * 1024;
        string config = Path.Combine(Path.GetTempPath(), $"hostvm-console-{Guid.NewGuid():N}.json");
        File.WriteAllText(config, $$"""{ "serial_log_max_bytes": {{cap}} }""");
        try
        {
            using var daemon = await DaemonUnderTest.StartAsync("--config", config);
            var vm = await StartShellVmAsync(daemon, "loud");
            string log = daemon.SerialLog(vm);

            using (var writer = await WebConsole.AttachAsync(daemon, "loud", "replay=0"))
            {
                // About 1 MB of output (16 times the cap), then a computed marker; the files never pass the cap meanwhile.
                await writer.SendAsync("yes HOSTVM-FLOOD-LINE-0123456789 | head -c 1000000; echo FLOOD-DONE-$((40+2))\n");
                var deadline = DateTime.UtcNow.AddSeconds(300);
                while (!writer.Output.Contains("FLOOD-DONE-42", StringComparison.Ordinal))
                {
                    Assert.True(DateTime.UtcNow < deadline, $"the flood did not finish: {writer.Bytes} bytes so far");
                    foreach (var file in new[] { log, log + ".1" })
                    {
                        // A rotation renames serial.log away before the next one is made: absent for a moment.
                        long size = SizeOrZero(file);
                        Assert.True(size <= cap, $"{file}: {size} bytes, over the cap of {cap}");
                    }

                    await Task.Delay(20);
                }

                Assert.True(writer.Bytes > 1_000_000, $"the writer saw all the output ({writer.Bytes} bytes)");
            }

            Assert.True(new FileInfo(log).Length <= cap && new FileInfo(log + ".1").Length == cap, "two generations, each within the cap");
            Assert.Contains("FLOOD-DONE-42", daemon.SerialText(vm), StringComparison.Ordinal);
            string tail = await LogAsync(daemon, "loud", 4096);
            Assert.Equal(4096, tail.Length);
            Assert.Contains("FLOOD-DONE-42", tail, StringComparison.Ordinal);

            // The daemon dies and comes back: it adopts the VMM, and the console still replays the latest output.
            await daemon.KillAndRestartAsync();
            Assert.Equal("running", await StateAsync(daemon, "loud"));
            using var watcher = await WebConsole.AttachAsync(daemon, "loud", "mode=watch&replay=1048576");
            await watcher.WaitForAsync("FLOOD-DONE-42");
            Assert.True(watcher.Bytes >= 1_000_000, $"the replay is the kept 1 MiB, not just the log on disk ({watcher.Bytes} bytes)");
            using var writer2 = await WebConsole.AttachAsync(daemon, "loud", "replay=0");
            await writer2.SendAsync("echo ADOPTED-$((7*6))\n");
            await watcher.WaitForAsync("ADOPTED-42");
        }
        finally
        {
            File.Delete(config);
        }
    }

    [Fact]
    public async Task ARevokedTokensConsoleAndEventSessionsAreClosedWithinASecondAndSessionLimitsHold()
    {
        string config = Path.Combine(Path.GetTempPath(), $"hostvm-sessions-{Guid.NewGuid():N}.json");
        File.WriteAllText(config, """{ "max_sessions_per_vm": 6 }"""); // max_sessions_per_token: the default, 8
        try
        {
            using var daemon = await DaemonUnderTest.StartAsync("--config", config);
            await StartShellVmAsync(daemon, "lapse");
            var (_, created) = await daemon.SendAsync(HttpMethod.Post, "/v1/tokens", new { role = "viewer" });
            string viewer = created.GetProperty("token").GetString()!;
            string viewerId = created.GetProperty("details").GetProperty("id").GetString()!;
            using var viewerClient = daemon.ClientWith(viewer);

            // Eight sessions of one token: four consoles and four event streams.
            var consoles = new List<WebConsole>();
            var streams = new List<SseReader>();
            for (int i = 0; i < 4; i++)
            {
                consoles.Add(await WebConsole.AttachAsync(daemon, "lapse", "mode=watch", viewer));
                streams.Add(await SseReader.OpenAsync(viewerClient, "/v1/events/stream"));
            }

            // A ninth of either kind is refused before it starts, with a problem that says what to do.
            Assert.Equal(HttpStatusCode.TooManyRequests, (await WebConsole.TryAttachAsync(daemon, "lapse", "mode=watch", viewer)).Status);
            using (var ninth = await viewerClient.GetAsync("/v1/events/stream", HttpCompletionOption.ResponseHeadersRead))
            {
                Assert.Equal(HttpStatusCode.TooManyRequests, ninth.StatusCode);
                Assert.Equal("application/problem+json", ninth.Content.Headers.ContentType?.MediaType);
                string problem = await ninth.Content.ReadAsStringAsync();
                Assert.Contains("max_sessions_per_token", problem, StringComparison.Ordinal);
                Assert.Contains("close one", problem, StringComparison.Ordinal);
            }

            // Another token is not held back by that one's cap, but the VM's cap counts everyone's consoles (4 + 2 = 6).
            using var adminWatch = await WebConsole.AttachAsync(daemon, "lapse", "mode=watch");
            using var adminWrite = await WebConsole.AttachAsync(daemon, "lapse", "mode=write&replay=0");
            Assert.Equal(HttpStatusCode.TooManyRequests, (await WebConsole.TryAttachAsync(daemon, "lapse", "mode=watch")).Status);

            // Revoked: every one of its sessions ends within a second (consoles with 1008 and the reason), no one else's.
            var clock = Stopwatch.StartNew();
            Assert.Equal(204, (await daemon.SendAsync(HttpMethod.Delete, $"/v1/tokens/{viewerId}")).Status);
            await Task.WhenAll(consoles.Select(c => c.WaitClosedAsync(1)).Concat(streams.Select(s => s.WaitForEndAsync(TimeSpan.FromSeconds(1)))));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"closed {clock.ElapsedMilliseconds} ms after the revocation was sent");
            foreach (var console in consoles)
            {
                Assert.Equal(WebSocketCloseStatus.PolicyViolation, console.CloseStatus);
                Assert.Equal($"token {viewerId} was revoked; attach again with a valid token", console.CloseReason);
            }

            Assert.Null(adminWatch.CloseStatus);
            await adminWrite.SendAsync("echo STILL-ATTACHED-$((6*7))\n");
            await adminWatch.WaitForAsync("STILL-ATTACHED-42");

            // Their places are free again; and a token that expires has its sessions closed within a second of that.
            using var again = await WebConsole.AttachAsync(daemon, "lapse", "mode=watch&replay=0");
            (_, created) = await daemon.SendAsync(HttpMethod.Post, "/v1/tokens", new { role = "viewer", expires_in = "3s" });
            string shortLived = created.GetProperty("token").GetString()!;
            var expires = created.GetProperty("details").GetProperty("expires_at").GetDateTimeOffset();
            using var expiringClient = daemon.ClientWith(shortLived);
            using var expiringConsole = await WebConsole.AttachAsync(daemon, "lapse", "mode=watch&replay=0", shortLived);
            using var expiringStream = await SseReader.OpenAsync(expiringClient, "/v1/events/stream");
            await Task.WhenAll(expiringConsole.WaitClosedAsync(10), expiringStream.WaitForEndAsync(TimeSpan.FromSeconds(10)));
            var late = DateTimeOffset.UtcNow - expires;
            Assert.True(late < TimeSpan.FromSeconds(1), $"closed {late.TotalMilliseconds:0} ms after the token expired");
            Assert.Equal(WebSocketCloseStatus.PolicyViolation, expiringConsole.CloseStatus);
            Assert.Contains("expired", expiringConsole.CloseReason, StringComparison.Ordinal);
            Assert.Null(again.CloseStatus);
            consoles.ForEach(c => c.Dispose());
            streams.ForEach(s => s.Dispose());
        }
        finally
        {
            File.Delete(config);
        }
    }
}
