using HostVM.Machine.Virtio;
using static HostVM.Machine.Virtio.MmioTransport;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>
/// Drives a <see cref="StateTwin"/> with random requests: A's driver initialises and makes requests
/// (some kicked, some left waiting), with register noise between them; then A is saved into B and the
/// same requests and noise go to both, compared after every step.
/// </summary>
internal sealed class RequestTraffic
{
    private readonly StateTwin _twin;
    private readonly Random _random;

    public RequestTraffic(StateTwin twin, int seed)
    {
        _twin = twin;
        _random = new Random(seed);
    }

    public Random Random => _random;

    public VirtioTestDriver Driver => _twin.A.Driver;

    /// <summary>True once A was restored into B: kicks and noise then go to both.</summary>
    public bool Mirrored { get; private set; }

    /// <summary>What a request ends with: a kick of <paramref name="queue"/> (A's alone before the save, both after).</summary>
    public Action Kick(int queue) => () =>
    {
        if (Mirrored)
        {
            _twin.Write(RegQueueNotify, (uint)queue);
        }
        else
        {
            Driver.Kick(queue);
        }
    };

    /// <summary>What a request ends with: a host-side action on the device (A's alone before the save, both after).</summary>
    public Action Host(Action<VirtioDevice> action) => () =>
    {
        if (Mirrored)
        {
            _twin.Both(action);
        }
        else
        {
            action(_twin.A.Device);
        }
    };

    /// <summary>
    /// Runs <paramref name="steps"/> random steps, saves A into B, runs as many again on both. A step is
    /// <paramref name="request"/> (most often) or register noise. A request only writes A's RAM as the driver
    /// would and returns what sets it off (a <see cref="Kick"/>, a <see cref="Host"/> action, or null to
    /// leave it waiting); after the save, B gets what the driver wrote before that runs on both.
    /// </summary>
    public void Run(int steps, Func<RequestTraffic, Action?> request, Action? copyBackends = null, ulong features = ulong.MaxValue)
    {
        bool eventIndex = _random.Next(2) == 0;
        Driver.Initialize(eventIndex ? features : features & ~VirtioFeatures.RingEventIdx);
        for (int i = 0; i < steps; i++)
        {
            Step(request);
        }

        _twin.Settle();
        string saved = _twin.SaveIntoB(copyBackends);
        Mirrored = true;
        _twin.AssertSame($"after restore of {saved}");
        for (int i = 0; i < steps; i++)
        {
            Step(request);
            _twin.AssertSame($"step {i} after restore");
            TakeUsed();
        }
    }

    private void Step(Func<RequestTraffic, Action?> request)
    {
        switch (_random.Next(8))
        {
            case 0:
                uint pending = (uint)_random.Next(4);
                Write(RegInterruptAck, pending);
                break;
            case 1:
                Write(RegQueueSel, (uint)_random.Next(_twin.A.Device.QueueCount + 1));
                Write(RegDeviceFeaturesSel, (uint)_random.Next(3));
                break;
            default:
                var trigger = request(this);
                if (Mirrored)
                {
                    _twin.Settle();
                    _twin.CopyRam(); // the devices are idle: only the driver's writes differ
                }

                trigger?.Invoke();
                break;
        }

        if (!Mirrored && _random.Next(4) == 0)
        {
            _twin.Settle();
            TakeUsed();
        }
    }

    private void Write(ulong offset, uint value)
    {
        if (Mirrored)
        {
            _twin.Write(offset, value);
        }
        else
        {
            _twin.A.Transport.Write(offset, 4, value);
        }
    }

    /// <summary>The driver takes what the devices returned (only reading RAM), so its descriptors come free.</summary>
    private void TakeUsed()
    {
        for (int q = 0; q < _twin.A.Device.QueueCount; q++)
        {
            var queue = Driver.Queue(q);
            while (queue.TryTakeUsed(out _))
            {
            }
        }
    }
}
