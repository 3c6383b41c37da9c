namespace HostVM.Machine.State;

/// <summary>What a section of a snapshot's state file holds (docs/snapshot-format.md).</summary>
public enum SnapshotSectionType : uint
{
    /// <summary>The VM's description, the VMM's FullVmConfiguration as JSON: what the machine is built from again.</summary>
    Description = 1,

    /// <summary>The machine's state records (harts, clock, platform devices, virtio transports and devices).</summary>
    MachineState = 2,

    /// <summary>Where guest RAM is in the memory file: a <see cref="MemoryMap"/>.</summary>
    MemoryMap = 3,

    /// <summary>The last section: its checksum covers every byte of the file before it, so a cut file is found out.</summary>
    End = 0xFFFF_FFFF,
}
