using HostVM.Machine.Virtio;
using HostVM.Networking;
using HostVM.Storage;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>
/// The transport's state round-trips: random register traffic drives a device's transport, it is saved
/// and restored into a fresh one, and from then on both read back the same and react alike.
/// </summary>
public sealed class MmioTransportStateTests : IDisposable
{
    private readonly TempDisk _diskA = new(1 << 20);
    private readonly TempDisk _diskB = new(1 << 20);
    private bool _second;

    public void Dispose()
    {
        _diskA.Dispose();
        _diskB.Dispose();
    }

    public static TheoryData<string, bool, int> Cases()
    {
        var data = new TheoryData<string, bool, int>();
        foreach (string device in new[] { "block", "net", "console", "balloon", "input", "rng" })
        {
            foreach (bool legacy in new[] { false, true })
            {
                for (int seed = 1; seed <= 4; seed++)
                {
                    data.Add(device, legacy, seed);
                }
            }
        }

        return data;
    }

    private VirtioDevice Create(string kind)
    {
        var disk = _second ? _diskB : _diskA;
        _second = !_second;
        return kind switch
        {
            "block" => new VirtioBlock(RawFileBlockDevice.Open(disk.Path, false, "state")),
            "net" => new VirtioNet(new LoopbackPacketPort(), MacAddress.Parse("52:54:00:12:34:56")),
            "console" => new VirtioConsole(_ => { }),
            "balloon" => new VirtioBalloon(deflateOnOom: true),
            "input" => new VirtioInput(),
            _ => new VirtioRng(),
        };
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Random_register_traffic_round_trips(string device, bool legacy, int seed)
    {
        using var twin = new StateTwin(() => Create(device), legacy);
        var random = new Random(seed);
        for (int i = 0; i < 300; i++)
        {
            RegisterTraffic.Next(random, twin.A, (offset, size, value) => twin.A.Transport.Write(offset, size, value));
        }

        twin.Settle();
        string saved = twin.SaveIntoB();
        twin.AssertSame($"after restore of {saved}");
        for (int i = 0; i < 300; i++)
        {
            RegisterTraffic.Next(random, twin.A, (offset, size, value) =>
            {
                twin.A.Transport.Write(offset, size, value);
                twin.B.Transport.Write(offset, size, value);
            });
            if (i % 50 == 49)
            {
                twin.AssertSame($"write {i}");
            }
        }

        twin.AssertSame("the end");
    }

    [Fact]
    public void A_state_for_another_device_type_is_refused()
    {
        using var rng = new VirtioRig(new VirtioRng());
        using var input = new VirtioRig(new VirtioInput());
        var e = Assert.Throws<ArgumentException>(() => input.Transport.RestoreState(rng.Transport.SaveState()));
        Assert.Contains("Entropy", e.Message, StringComparison.Ordinal);
    }
}
