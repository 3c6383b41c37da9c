using System.Text.Json;

namespace HostVM.Integration.Tests;

/// <summary>GET /v1/events/stream against a real daemon: events of a VM's life in order, resuming by id, and the end when the daemon stops.</summary>
[Collection(GuestCollection.Name)]
public sealed class EventStreamTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task TheStreamDeliversAVmsEventsInOrderAndResumesAfterALastEventId()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        using var live = await SseReader.OpenAsync(daemon.Client, "/v1/events/stream?vm=sse");

        var vm = await daemon.CreateVmAsync(new { name = "sse", image = "guest", memory_mib = 64 });
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/sse/start")).Status);
        await daemon.WaitForSerialAsync(vm, "HOSTVM-GUEST-READY");
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/sse/stop", new { force = true })).Status);
        await daemon.CreateVmAsync(new { name = "other", image = "guest", memory_mib = 64 }); // not sse's: filtered out

        var seen = new List<SseEvent>();
        while (seen.Count == 0 || seen[^1].Type != "stopped")
        {
            seen.Add(await live.NextAsync(Wait));
        }

        Assert.Equal(["created", "starting", "started", "stopping", "stopped"], seen.Select(e => e.Type));
        Assert.Equal(seen.Select(e => e.Id).Order(), seen.Select(e => e.Id));
        foreach (var e in seen)
        {
            Assert.Equal(e.Id, e.Data.GetProperty("id").GetInt64());
            Assert.Equal(e.Type, e.Data.GetProperty("type").GetString());
            Assert.Equal("sse", e.Data.GetProperty("vm").GetString());
        }

        // The same as GET /v1/events holds.
        var stored = (await daemon.GetAsync("/v1/events?vm=sse")).EnumerateArray().Select(e => e.GetProperty("id").GetInt64()).Order().ToList();
        Assert.Equal(stored, seen.Select(e => e.Id));

        // Resuming after "started" gives the later events only, from the inventory, then waits for new ones.
        long started = seen.Single(e => e.Type == "started").Id;
        using (var resumed = await SseReader.OpenAsync(daemon.Client, "/v1/events/stream?vm=sse", lastEventId: started))
        {
            Assert.Equal("stopping", (await resumed.NextAsync(Wait)).Type);
            Assert.Equal("stopped", (await resumed.NextAsync(Wait)).Type);
            Assert.Equal(204, (await daemon.SendAsync(HttpMethod.Delete, "/v1/vms/sse")).Status);
            var deleted = await resumed.NextAsync(Wait);
            Assert.Equal("deleted", deleted.Type);
            Assert.True(deleted.Id > seen[^1].Id);
        }

        // ?since_id= does the same for clients that cannot set the header; a bad id is a 400.
        using (var bySince = await SseReader.OpenAsync(daemon.Client, $"/v1/events/stream?vm=sse&since_id={started}"))
        {
            Assert.Equal("stopping", (await bySince.NextAsync(Wait)).Type);
        }

        Assert.Equal(400, (await daemon.SendAsync(HttpMethod.Get, "/v1/events/stream?since_id=abc")).Status);

        // The daemon stopping ends the stream (and the stream does not hold the daemon up).
        using var everything = await SseReader.OpenAsync(daemon.Client, "/v1/events/stream");
        DaemonUnderTest.ProcessKill(daemon.Process.Id, 15);
        Assert.Equal(0, await daemon.Process.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        await everything.WaitForEndAsync(TimeSpan.FromSeconds(10));
    }
}
