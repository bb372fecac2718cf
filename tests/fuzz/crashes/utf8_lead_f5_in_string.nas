let s = "õ€€€";
