using HostVM.Machine.Cpu;
using HostVM.Machine.Memory;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>One virtio device on its transport over fresh guest RAM, with a test driver: what a test needs.</summary>
internal sealed class VirtioRig : IDisposable
{
    public const int Irq = 7;
    public const ulong DefaultRamSize = 4UL << 20;

    public VirtioRig(VirtioDevice device, bool legacy = false, ulong ramSize = DefaultRamSize)
    {
        Device = device;
        Ram = new GuestRam(ramSize);
        Memory = new GuestMemory(Ram, new CodeCache(Ram));
        Transport = new MmioTransport(device, Memory, Irqs, Irq, legacy);
        Driver = new VirtioTestDriver(Ram, Transport);
    }

    public VirtioDevice Device { get; }

    public GuestRam Ram { get; }

    public GuestMemory Memory { get; }

    public RecordingInterruptController Irqs { get; } = new();

    public MmioTransport Transport { get; }

    public VirtioTestDriver Driver { get; }

    public bool IrqLine => Irqs[Irq];

    public void Dispose()
    {
        Device.Dispose(); // stops the device's thread before its RAM goes away
        Ram.Dispose();
    }
}
