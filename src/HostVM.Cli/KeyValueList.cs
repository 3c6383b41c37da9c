namespace HostVM.Cli;

/// <summary>
/// QEMU-style option values: <c>word,key=value,key=value</c>. A key may repeat (hostfwd=...), a leading
/// bare word is the kind (<c>user</c>), and ",," stands for a literal comma in a value, as in QEMU.
/// </summary>
public sealed class KeyValueList
{
    private readonly List<KeyValuePair<string, string>> _pairs = [];
    private readonly HashSet<string> _used = [];

    private KeyValueList(string option, string text)
    {
        Option = option;
        Text = text;
    }

    public string Option { get; }

    public string Text { get; }

    /// <summary>The leading word without '=', if any (e.g. "user").</summary>
    public string? Kind { get; private set; }

    public static KeyValueList Parse(string option, string text)
    {
        var list = new KeyValueList(option, text);
        var parts = new List<string>();
        var current = new System.Text.StringBuilder();
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == ',')
            {
                if (i + 1 < text.Length && text[i + 1] == ',')
                {
                    current.Append(',');
                    i++;
                    continue;
                }

                parts.Add(current.ToString());
                current.Clear();
                continue;
            }

            current.Append(text[i]);
        }

        parts.Add(current.ToString());
        for (int i = 0; i < parts.Count; i++)
        {
            string part = parts[i];
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                if (i == 0 && part.Length > 0)
                {
                    list.Kind = part;
                    continue;
                }

                throw new DeviceOptionException($"{option} {text}: '{part}' is not key=value.");
            }

            if (eq == 0)
            {
                throw new DeviceOptionException($"{option} {text}: '{part}' has no key before '='.");
            }

            list._pairs.Add(new(part[..eq], part[(eq + 1)..]));
        }

        return list;
    }

    public string? Get(string key)
    {
        string? value = null;
        foreach (var (k, v) in _pairs)
        {
            if (k == key)
            {
                if (value is not null)
                {
                    throw new DeviceOptionException($"{Option} {Text}: {key}= is given twice.");
                }

                value = v;
            }
        }

        _used.Add(key);
        return value;
    }

    public IReadOnlyList<string> GetAll(string key)
    {
        _used.Add(key);
        return [.. _pairs.Where(p => p.Key == key).Select(p => p.Value)];
    }

    public bool GetSwitch(string key, bool defaultValue)
    {
        return Get(key) switch
        {
            null => defaultValue,
            "on" or "true" or "yes" or "1" => true,
            "off" or "false" or "no" or "0" => false,
            var v => throw new DeviceOptionException($"{Option} {Text}: {key}={v}: write on or off."),
        };
    }

    /// <summary>Call after reading every known key: an unknown one is an error, not silently ignored.</summary>
    public void RejectUnknown(string known)
    {
        foreach (var (k, _) in _pairs)
        {
            if (!_used.Contains(k))
            {
                throw new DeviceOptionException($"{Option} {Text}: unknown key '{k}' (known: {known}).");
            }
        }
    }
}
