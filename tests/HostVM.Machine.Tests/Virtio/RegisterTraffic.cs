using HostVM.Machine.Virtio;
using static HostVM.Machine.Virtio.MmioTransport;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>
/// Random but plausible register writes, as a confused or hostile driver would make them: feature and
/// queue selects, driver features, queue layouts in guest RAM, status steps (including DRIVER_OK and
/// resets), interrupt acks, kicks and configuration writes.
/// </summary>
internal static class RegisterTraffic
{
    private static readonly ulong[] Offsets =
    [
        RegDeviceFeaturesSel, RegDriverFeatures, RegDriverFeaturesSel, RegLegacyGuestPageSize, RegQueueSel, RegQueueNum,
        RegLegacyQueueAlign, RegLegacyQueuePfn, RegQueueReady, RegQueueNotify, RegInterruptAck, RegStatus,
        RegQueueDescLow, RegQueueDescHigh, RegQueueDriverLow, RegQueueDriverHigh, RegQueueDeviceLow, RegQueueDeviceHigh,
    ];

    /// <summary>One random write, given to <paramref name="write"/> as (offset, size, value).</summary>
    public static void Next(Random random, VirtioRig rig, Action<ulong, int, ulong> write)
    {
        ulong offset = Offsets[random.Next(Offsets.Length)];
        ulong ramPage = (rig.Ram.BaseAddress + ((ulong)random.Next((int)(rig.Ram.Size / 4096) - 16) * 4096)) >> 12;
        uint value = offset switch
        {
            RegDeviceFeaturesSel or RegDriverFeaturesSel => (uint)random.Next(3),
            RegDriverFeatures => (uint)(random.Next(2) == 0 ? rig.Transport.OfferedFeatures >> (32 * random.Next(2)) : (ulong)random.NextInt64()),
            RegLegacyGuestPageSize => random.Next(4) == 0 ? 0x1000u : (uint)(1 << random.Next(16)),
            RegQueueSel => (uint)random.Next(rig.Device.QueueCount + 1),
            RegQueueNum => (uint)(1 << random.Next(9)),
            RegLegacyQueueAlign => (uint)(1 << random.Next(14)),
            RegLegacyQueuePfn => random.Next(4) == 0 ? 0 : (uint)ramPage,
            RegQueueReady => (uint)random.Next(2),
            RegQueueNotify => (uint)random.Next(rig.Device.QueueCount + 1),
            RegInterruptAck => (uint)random.Next(4),
            RegStatus => random.Next(6) == 0 ? 0 : (uint)random.Next(16) | (random.Next(3) == 0 ? VirtioStatus.FeaturesOk : 0),
            RegQueueDescLow or RegQueueDriverLow or RegQueueDeviceLow => (uint)(ramPage << 12) + ((uint)random.Next(4) * 64),
            _ => random.Next(8) == 0 ? 1u : 0u, // the high halves: mostly inside RAM
        };

        if (random.Next(10) == 0 && rig.Device.ConfigSize > 0)
        {
            int at = random.Next(rig.Device.ConfigSize);
            write(ConfigOffset + (ulong)at, 1, (ulong)random.Next(256));
            return;
        }

        write(offset, 4, value);
    }
}
