namespace HostVM.Host.Inventory;

/// <summary>
/// A VM's cloud-init NoCloud seed (<see cref="Supervision.VmPaths.Seed"/>, a read-only ISO 9660 disk labelled CIDATA): the
/// instance id its meta-data gives (the VM's id: a clone gets its own, so cloud-init runs its first boot again) and the host name.
/// </summary>
public sealed record CloudInitRecord(string InstanceId, string Hostname);
